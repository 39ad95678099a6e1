"""A result for every planned block: from the lockfile or the cache, else from the runner, under the mode's policy."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..core.protocol import CodeOutcome, GenerateOutcome, GenerateRequest, Runner, from_json
from ..core.settings import Settings
from ..errors import with_fix
from ..plan.page import Job, PagePlan
from ..vocabulary import FIXES
from . import entries
from .boundary import Boundary
from .cache import ResultCache
from .code import resolve_code
from .recorder import Recorder
from .store import Store

if TYPE_CHECKING:  # the tokens fence's modules load when a page has one; the background's under `serve`
    from ..core.ranking import RankOutcome
    from ..plan.tokens import RankJob
    from .deferred import Background, Provenance


class Resolver:
    """One build's resolution; the runner (and its loaded models) outlives it, for `serve`."""

    def __init__(
        self,
        settings: Settings,
        runner: Callable[[], Runner],
        report: Callable[[str], None],
        progress: Callable[[str], None],
    ) -> None:
        self.settings, self.report, self.progress = settings, report, progress
        self.fresh: dict[str, GenerateOutcome] = {}  # generated in this build (prefetch), failures too
        only = _changed_since(settings) if settings.policy.compares and settings.since else None
        if only is not None:
            progress(
                f"verify: {len(only)} lockfile entr{'y' if len(only) == 1 else 'ies'} added or changed since "
                f"{settings.since}; only their blocks (and the code blocks they depend on) are re-executed"
            )
        self.store = Store(
            settings.policy,
            ResultCache(settings.lockfile),
            ResultCache(settings.cache_dir / "results"),
            progress,
            report,
            only=only,
        )
        self.recorder = Recorder(settings, self.store, report, progress)
        self.boundary = Boundary(runner, self.recorder.stats)
        self.deferred: Background | None = None  # under `serve`: missing generations run in the background

    # -- generation ------------------------------------------------------------------------------

    def prefetch(self, plans: Iterable[PagePlan]) -> None:
        """Before any page renders: every missing generation of the whole site, in one call (the worker batches)."""
        if not self.store.may_execute:
            return
        missing: dict[str, Job] = {}
        for plan in plans:
            for job in plan.jobs:
                if job.key not in missing and self.store.lookup(job.key) is None:
                    missing[job.key] = job
        if missing:
            self._generate(list(missing.values()))

    def generations(self, plan: PagePlan) -> dict[str, GenerateOutcome]:
        """The outcome of every job of a page, by key."""
        found: dict[str, GenerateOutcome] = {}
        misses: dict[str, Job] = {}
        for job in plan.jobs:
            if job.key in self.fresh:
                found[job.key] = self.fresh[job.key]
            elif (hit := self.store.lookup(job.key)) is not None:
                found[job.key] = from_json(GenerateOutcome, hit)
                self.recorder.stats.cached += 1
            else:
                misses[job.key] = job
        if misses and not self.store.may_execute:
            for key, job in misses.items():
                found[key] = self.recorder.unexecuted(
                    entries.generate(job, None, self.settings.models, {}), GenerateOutcome
                )
        elif misses:
            found.update(self._generate(list(misses.values())))
        return found

    def _generate(self, jobs: list[Job]) -> dict[str, GenerateOutcome]:
        if self.deferred is not None:  # `serve`: shown pending now, recorded by the build after they are done
            return self.deferred.resolve(self, jobs, self.boundary.start)
        self.progress(
            f"generating {len(jobs)} answer(s) for {len({(j.block.page, j.block.line) for j in jobs})} block(s)"
        )
        requests = [_request(j, self.settings.timeout) for j in jobs]
        outcomes = self.boundary.call("generation", lambda: self.boundary.start().generate(requests), GenerateOutcome)
        outcomes += [GenerateOutcome(status="skipped", error="not run: the worker stopped")] * (
            len(jobs) - len(outcomes)
        )
        return self.settle(jobs, outcomes, self.boundary.provenance())

    def settle(
        self, jobs: list[Job], outcomes: list[GenerateOutcome], provenance: Provenance
    ) -> dict[str, GenerateOutcome]:
        """Generated answers recorded and their failures reported: this build's, or finished in the background."""
        for job, outcome in zip(jobs, outcomes):
            self.fresh[job.key] = outcome
            self.recorder.record(job.key, entries.generate(job, outcome, self.settings.models, *provenance))
            if outcome.status not in ("ok", "unexecuted"):
                what = (
                    f"evaluate block, request {job.item} on {job.variant},"
                    if job.item
                    else f"generate block, column {job.variant},"
                    if job.variant
                    else "generate block"
                )
                self.report(
                    with_fix(
                        f"{job.block.where}: {what} failed on the {job.role} model: {outcome.error}",
                        FIXES.get(outcome.status, "see the message above"),
                    )
                )
        return {job.key: outcome for job, outcome in zip(jobs, outcomes)}

    def ranks(self, jobs: list[RankJob]) -> dict[str, RankOutcome]:
        """Recorded answers scored under another model (tokens blocks): looked up, else run in one batched call."""
        from .ranks import resolve_ranks  # only a page with a tokens fence needs it

        return resolve_ranks(self, jobs)

    # -- code ------------------------------------------------------------------------------------

    def code(self, plan: PagePlan) -> list[CodeOutcome]:
        """A page's code blocks in order: cached, or run (from the last checkpoint that lets it resume)."""
        return resolve_code(self, plan)


def _changed_since(settings: Settings) -> set[str]:
    """verify --since: the lockfile keys added or changed since a git ref (git is asked only then)."""
    from . import since

    return since.changed_keys(settings.lockfile, settings.since)


def _request(job: Job, timeout: float) -> GenerateRequest:
    return GenerateRequest(job.role, job.request, job.block.timeout or timeout)
