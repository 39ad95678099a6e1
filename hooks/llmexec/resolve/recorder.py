"""What a build does with each outcome: recorded (by the mode's policy), reported, counted, marked as a preview's."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.protocol import CodeOutcome
from ..core.settings import Settings
from ..errors import with_fix
from ..plan.blocks import Block
from ..vocabulary import FAILURES, FIXES, LOCK_COMMAND
from .store import Store


@dataclass
class Stats:
    """A build's counts (executed, from cache, failed) and where its time went."""

    executed: int = 0
    cached: int = 0
    failed: int = 0
    unexecuted: int = 0
    claims: int = 0
    failed_claims: int = 0
    loading: float = 0.0  # seconds, measured around runner calls: the worker's start and model loads
    generation: float = 0.0
    code: float = 0.0
    started: float = field(default_factory=time.perf_counter)


class Recorder:
    """The outcomes of one build: stored or compared, failures reported, preview-only results marked, time split."""

    def __init__(
        self, settings: Settings, store: Store, report: Callable[[str], None], progress: Callable[[str], None]
    ) -> None:
        self.settings, self.store, self.report, self.progress = settings, store, report, progress
        self.stats = Stats()
        self.preview_only: set[str] = set()  # "where#role" executed by a preview build: marked, never stored

    def failure(self, block: Block, outcome: CodeOutcome) -> None:
        if outcome.status in FAILURES:
            error = "\n".join("    " + line for line in outcome.error.splitlines())
            message = f"{block.where}: code {'cell' if block.cell else 'block'} {FAILURES[outcome.status]}\n{error}"
            self.report(message if "\n  --> " in outcome.error else with_fix(message, FIXES[outcome.status]))

    def unexecuted(self, entry: dict[str, Any], outcome_type: type) -> Any:
        """A block this mode may not execute: an `unexecuted` outcome with no text, since the mode is why (the page
        says so with the block's location: present/render.why_not_executed); reported here under locked mode."""
        where = entry["where"]
        self.store.not_executed(entry)
        if self.settings.policy.marks_only:
            self.stats.unexecuted += 1
            self.progress(f"{where}: not executed in preview mode (its inputs changed)")
        else:
            self.stats.failed += 1
            message = f"{where}: no lockfile entry matches this block, and {self.settings.mode} mode never executes"
            self.report(with_fix(message, f"update the lockfile: {LOCK_COMMAND}"))
        return outcome_type(status="unexecuted")

    def record(self, key: str, entry: dict[str, Any]) -> None:
        status = entry["outcome"]["status"]
        if status == "unexecuted":  # the runner declined it: a tuned model a preview may not train
            self.store.not_executed(entry)
            self.stats.unexecuted += 1
            self.progress(f"{entry['where']}: not executed: {entry['outcome']['error'].splitlines()[0]}")
        elif status == "ok":
            verdict = self.store.record(key, entry)  # only successes are stored
            self.stats.executed += 1
            if verdict == "changed":
                from .mismatch import mismatch  # with the tolerance rules it reads: only a changed output needs it

                path = self.store.lock.path(key)
                self.report(mismatch(self.store.locked_entry(key) or {}, entry, f"{path.parent.name}/{path.name}"))
            elif verdict == "new" and self.settings.policy.marks_only:
                self.preview_only.add(f"{entry['where']}#{entry['role']}")
        elif status != "skipped":
            self.stats.failed += 1

    def summary(self) -> str:
        s = self.stats
        rest = max(0.0, time.perf_counter() - s.started - s.loading - s.generation - s.code)
        extra = f", {s.unexecuted} not executed ({self.settings.mode} mode)" if s.unexecuted else ""
        checked = f"; {s.claims} claims checked, {s.failed_claims} false or broken" if s.claims else ""
        return (
            f"{s.executed} blocks executed, {s.cached} from cache, {s.failed} failed{extra}{checked}; "
            f"time: loading (the worker and models) {s.loading:.1f} s, generation {s.generation:.1f} s, code {s.code:.1f} s, "
            f"the rest {rest:.1f} s"
        )
