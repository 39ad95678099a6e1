"""A page's code blocks resolved in order: all looked up, else run from the last checkpoint that lets them resume."""

from __future__ import annotations

from typing import Any

from ..core.files import checkpoint_path
from ..core.protocol import CodeOutcome, CodeRequest, from_json
from ..plan.page import PagePlan
from . import entries
from .boundary import Resolving


def resolve_code(resolver: Resolving, plan: PagePlan) -> list[CodeOutcome]:
    """A page's code blocks in order: cached, or run (from the last checkpoint that lets it resume)."""
    settings, recorder = resolver.settings, resolver.recorder
    blocks, keys = list(plan.code), list(plan.code_keys)
    if not blocks:
        return []
    hits = [resolver.store.lookup(key) for key in keys]
    if all(hit is not None for hit in hits):
        recorder.stats.cached += len(blocks)
        return [from_json(CodeOutcome, hit) for hit in hits if hit is not None]  # all are
    if not resolver.store.may_execute:
        return [
            from_json(CodeOutcome, hit)
            if hit is not None
            else recorder.unexecuted(entries.code(b, i, None, settings.models, {}), CodeOutcome)
            for i, (b, hit) in enumerate(zip(blocks, hits))
        ]
    preview = not settings.policy.trusted  # untrusted code: its state is never pickled nor restored
    resume = 0 if preview else _resume_point(resolver, keys, hits)
    resolver.progress(
        f"{plan.page}: running {len(blocks) - resume} code block(s)"
        + (f" from block {resume + 1}, the state before it restored" if resume else "")
    )
    requests = [
        CodeRequest(b.source, b.filename, b.first_line, b.timeout or settings.timeout, b.cell, "" if preview else key)
        for b, key in zip(blocks, keys)
    ]
    start = resume

    def run() -> list[CodeOutcome]:
        nonlocal start
        start, ran = resolver.boundary.start().run_code(plan.page, requests, resume)
        return ran

    ran = resolver.boundary.call("code", run, CodeOutcome)
    recorder.stats.cached += start
    outcomes = [from_json(CodeOutcome, hit) for hit in hits[:start]] + ran  # type: ignore[arg-type]  # resumed after cached blocks only
    stop = next(((b, o) for b, o in zip(blocks, outcomes) if o.status != "ok"), None)
    what = "was not executed" if stop and stop[1].status == "unexecuted" else "failed"
    while len(outcomes) < len(blocks):
        outcomes.append(
            CodeOutcome(
                status="skipped",
                error=f"not run: the block at "
                f"{stop[0].where if stop else 'an earlier block'} {what}, and later blocks "
                "on a page depend on the earlier ones",
            )
        )
    for index in range(start, len(blocks)):
        recorder.record(
            keys[index],
            entries.code(blocks[index], index, outcomes[index], settings.models, *resolver.boundary.provenance()),
        )
        recorder.failure(blocks[index], outcomes[index])
    return outcomes


def _resume_point(resolver: Resolving, keys: list[str], hits: list[dict[str, Any] | None]) -> int:
    """How many leading blocks need not run: all cached, and the state after the last of them checkpointed."""
    for k in range(len(keys) - 1, 0, -1):
        if (
            all(hit is not None for hit in hits[:k])
            and checkpoint_path(resolver.settings.states_dir, keys[k - 1]).is_file()
        ):
            return k
    return 0
