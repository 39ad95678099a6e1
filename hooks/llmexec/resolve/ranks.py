"""Tokens blocks resolved: each recorded answer's token-by-token scores, looked up, else run in one batched call."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.protocol import from_json
from ..core.ranking import RankOutcome
from ..errors import with_fix
from ..vocabulary import FIXES
from . import entries
from .boundary import Resolving

if TYPE_CHECKING:
    from ..plan.tokens import RankJob


def resolve_ranks(resolver: Resolving, jobs: list[RankJob]) -> dict[str, RankOutcome]:
    """The outcome of every rank job, by key: from the lockfile or cache, else scored now (where the mode lets it)."""
    found: dict[str, RankOutcome] = {}
    misses: dict[str, RankJob] = {}
    for job in jobs:
        if (hit := resolver.store.lookup(job.key)) is not None:
            found[job.key] = from_json(RankOutcome, hit)
            resolver.recorder.stats.cached += 1
        else:
            misses[job.key] = job
    models = resolver.settings.models
    if misses and not resolver.store.may_execute:
        for key, job in misses.items():
            found[key] = resolver.recorder.unexecuted(entries.ranks(job, None, models, {}), RankOutcome)
        return found
    if not misses:
        return found
    resolver.progress(
        f"scoring {len(misses)} answer(s) token by token for {len({j.block.line for j in jobs})} block(s)"
    )
    todo = list(misses.values())
    outcomes = resolver.boundary.call(
        "generation", lambda: resolver.boundary.start().rank([j.request for j in todo]), RankOutcome
    )
    outcomes += [RankOutcome(status="skipped", error="not run: the worker stopped")] * (len(todo) - len(outcomes))
    for job, outcome in zip(todo, outcomes):
        found[job.key] = outcome
        resolver.recorder.record(job.key, entries.ranks(job, outcome, models, *resolver.boundary.provenance()))
        if outcome.status not in ("ok", "unexecuted"):
            resolver.report(
                with_fix(
                    f"{job.block.where}: tokens block, answer {job.item.id} could not be scored on the "
                    f"{job.request.model} model: {outcome.error}",
                    FIXES.get(outcome.status, "see above"),
                )
            )
    return found
