"""A result for every planned block: from the lockfile or the cache, else from the runner, under the mode's policy."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..core.files import checkpoint_path
from ..core.protocol import CodeOutcome, CodeRequest, GenerateOutcome, GenerateRequest, Runner, from_json
from ..core.settings import PREVIEW_EXECUTE_ENV, Settings
from ..errors import with_fix
from ..plan.blocks import Block
from ..plan.page import Job, PagePlan
from ..present import report as drift_report
from ..vocabulary import FAILURES, FIXES, LOCK_COMMAND
from . import entries, since
from .cache import ResultCache
from .store import Store

@dataclass
class Stats:
    executed: int = 0
    cached: int = 0
    failed: int = 0
    unexecuted: int = 0
    claims: int = 0
    failed_claims: int = 0
    loading: float = 0.0  # seconds, measured around runner calls
    generation: float = 0.0
    code: float = 0.0
    started: float = field(default_factory=time.perf_counter)


class Resolver:
    """One build's resolution; the runner (and its loaded models) outlives it, for `serve`."""

    def __init__(self, settings: Settings, runner: Callable[[], Runner], report: Callable[[str], None],
                 progress: Callable[[str], None]) -> None:
        self.settings, self._runner, self.report, self.progress = settings, runner, report, progress
        self.stats = Stats()
        self.fresh: dict[str, GenerateOutcome] = {}  # generated in this build (prefetch), failures too
        self.preview_only: set[str] = set()  # "where#role" executed by a preview build: marked, never stored
        only = since.changed_keys(settings.lockfile, settings.since) if settings.mode == "verify" and settings.since else None
        if only is not None:
            progress(f"verify: {len(only)} lockfile entr{'y' if len(only) == 1 else 'ies'} added or changed since "
                     f"{settings.since}; only their blocks (and the code blocks they depend on) are re-executed")
        self.store = Store(settings.mode, ResultCache(settings.lockfile), ResultCache(settings.cache_dir / "results"),
                           progress, report, only=only, preview_execute=settings.preview_execute)
        self.runner: Runner | None = None  # set on the first call: a build with nothing to execute never starts one

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
                self.stats.cached += 1
            else:
                misses[job.key] = job
        if misses and not self.store.may_execute:
            for key, job in misses.items():
                found[key] = self._unexecuted(entries.generate(job, None, self.settings.models, {}), GenerateOutcome)
        elif misses:
            found.update(self._generate(list(misses.values())))
        return found

    def _generate(self, jobs: list[Job]) -> dict[str, GenerateOutcome]:
        self.progress(f"generating {len(jobs)} answer(s) for {len({(j.block.page, j.block.line) for j in jobs})} block(s)")
        requests = [_request(j, self.settings.timeout) for j in jobs]
        outcomes = self._call("generation", lambda: self._start().generate(requests), GenerateOutcome)
        outcomes += [GenerateOutcome(status="skipped", error="not run: the worker stopped")] * (len(jobs) - len(outcomes))
        for job, outcome in zip(jobs, outcomes):
            self.fresh[job.key] = outcome
            self._record(job.key, entries.generate(job, outcome, self.settings.models, *self._provenance()))
            if outcome.status not in ("ok", "unexecuted"):
                what = (f"evaluate block, request {job.item} on {job.variant}," if job.item
                        else f"generate block, column {job.variant}," if job.variant else "generate block")
                self.report(with_fix(f"{job.block.where}: {what} failed on the {job.role} model: {outcome.error}",
                                     FIXES.get(outcome.status, "see the message above")))
        return {job.key: outcome for job, outcome in zip(jobs, outcomes)}

    # -- code ------------------------------------------------------------------------------------

    def code(self, plan: PagePlan) -> list[CodeOutcome]:
        """A page's code blocks in order: cached, or run (from the last checkpoint that lets it resume)."""
        blocks, keys = list(plan.code), list(plan.code_keys)
        if not blocks:
            return []
        hits = [self.store.lookup(key) for key in keys]
        if all(hit is not None for hit in hits):
            self.stats.cached += len(blocks)
            return [from_json(CodeOutcome, hit) for hit in hits]  # type: ignore[arg-type]
        if not self.store.may_execute:
            return [from_json(CodeOutcome, hit) if hit is not None else
                    self._unexecuted(entries.code(b, i, None, self.settings.models, {}), CodeOutcome)
                    for i, (b, hit) in enumerate(zip(blocks, hits))]
        preview = self.settings.mode == "preview"  # untrusted code: its state is never pickled nor restored
        resume = 0 if preview else self._resume_point(keys, hits)
        self.progress(f"{plan.page}: running {len(blocks) - resume} code block(s)"
                      + (f" from block {resume + 1}, the state before it restored" if resume else ""))
        requests = [CodeRequest(b.source, b.filename, b.first_line, b.timeout or self.settings.timeout, b.cell,
                                "" if preview else key) for b, key in zip(blocks, keys)]
        start = resume
        def run() -> list[CodeOutcome]:
            nonlocal start
            start, ran = self._start().run_code(plan.page, requests, resume)
            return ran
        ran = self._call("code", run, CodeOutcome)
        self.stats.cached += start
        outcomes = [from_json(CodeOutcome, hit) for hit in hits[:start]] + ran  # type: ignore[arg-type]
        stop = next(((b, o) for b, o in zip(blocks, outcomes) if o.status != "ok"), None)
        what = "was not executed" if stop and stop[1].status == "unexecuted" else "failed"
        while len(outcomes) < len(blocks):
            outcomes.append(CodeOutcome(status="skipped", error=f"not run: the block at "
                                        f"{stop[0].where if stop else 'an earlier block'} {what}, and later blocks "
                                        "on a page depend on the earlier ones"))
        for index in range(start, len(blocks)):
            self._record(keys[index], entries.code(blocks[index], index, outcomes[index], self.settings.models,
                                                   *self._provenance()))
            self.report_failure(blocks[index], outcomes[index])
        return outcomes

    def _resume_point(self, keys: list[str], hits: list[dict[str, Any] | None]) -> int:
        """How many leading blocks need not run: all cached, and the state after the last of them checkpointed."""
        for k in range(len(keys) - 1, 0, -1):
            if all(hit is not None for hit in hits[:k]) and checkpoint_path(self.settings.states_dir, keys[k - 1]).is_file():
                return k
        return 0

    def report_failure(self, block: Block, outcome: CodeOutcome) -> None:
        if outcome.status in FAILURES:
            error = "\n".join("    " + line for line in outcome.error.splitlines())
            message = f"{block.where}: code {'cell' if block.cell else 'block'} {FAILURES[outcome.status]}\n{error}"
            self.report(message if "\n  --> " in outcome.error else with_fix(message, FIXES[outcome.status]))

    # -- shared ----------------------------------------------------------------------------------

    def _start(self) -> Runner:
        if self.runner is None:
            self.runner = self._runner()
        return self.runner

    def _call(self, kind: str, call: Callable[[], list[Any]], outcome_type: type) -> list[Any]:
        """The runner boundary: whatever it raises becomes a failed outcome with the message, not a traceback.
        Also splits the wall time between model loading and `kind`."""
        started, loaded = time.perf_counter(), getattr(self.runner, "load_seconds", 0.0)
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - reported on the page and in the log
            return [outcome_type(status="crashed", error=str(exc) or type(exc).__name__)]
        finally:
            loading = getattr(self.runner, "load_seconds", loaded) - loaded
            self.stats.loading += loading
            setattr(self.stats, kind, getattr(self.stats, kind) + time.perf_counter() - started - loading)

    def _provenance(self) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
        """Library versions, the machine, and tuned weights: recorded with every entry the runner produced."""
        return tuple(dict(getattr(self.runner, name, {}) or {}) for name in ("versions", "machine", "weights"))  # type: ignore[return-value]

    def _unexecuted(self, entry: dict[str, Any], outcome_type: type) -> Any:
        """A block this mode may not execute: an `unexecuted` outcome whose error says why (shown on the page)."""
        where = entry["where"]
        self.store.not_executed(entry)
        if self.settings.mode == "preview":
            self.stats.unexecuted += 1
            self.progress(f"{where}: not executed in preview mode (its inputs changed)")
            return outcome_type(status="unexecuted", error=f"The inputs of this block ({where}) changed, and this "
                                f"preview executes nothing ({PREVIEW_EXECUTE_ENV}=1 would run it here). Its output "
                                "appears once the lockfile is updated.")
        self.stats.failed += 1
        message = f"{where}: no lockfile entry matches this block, and {self.settings.mode} mode never executes"
        self.report(with_fix(message, f"update the lockfile: {LOCK_COMMAND}"))
        return outcome_type(status="unexecuted", error=f"{message}; {LOCK_COMMAND}")

    def _record(self, key: str, entry: dict[str, Any]) -> None:
        status = entry["outcome"]["status"]
        if status == "unexecuted":  # the runner declined it: a tuned model a preview may not train
            self.store.not_executed(entry)
            self.stats.unexecuted += 1
            self.progress(f"{entry['where']}: not executed: {entry['outcome']['error'].splitlines()[0]}")
        elif status == "ok":
            verdict = self.store.record(key, entry)  # only successes are stored
            self.stats.executed += 1
            if verdict == "changed":
                path = self.store.lock.path(key)
                self.report(drift_report.mismatch(self.store.locked_entry(key) or {}, entry,
                                                  f"{path.parent.name}/{path.name}"))
            elif verdict == "new" and self.settings.mode == "preview":
                self.preview_only.add(f"{entry['where']}#{entry['role']}")
        elif status != "skipped":
            self.stats.failed += 1

    def summary(self) -> str:
        s = self.stats
        rest = max(0.0, time.perf_counter() - s.started - s.loading - s.generation - s.code)
        extra = f", {s.unexecuted} not executed ({self.settings.mode} mode)" if s.unexecuted else ""
        checked = f"; {s.claims} claims checked, {s.failed_claims} false or broken" if s.claims else ""
        return (f"{s.executed} blocks executed, {s.cached} from cache, {s.failed} failed{extra}{checked}; "
                f"time: loading models {s.loading:.1f} s, generation {s.generation:.1f} s, code {s.code:.1f} s, "
                f"the rest {rest:.1f} s")


def _request(job: Job, timeout: float) -> GenerateRequest:
    b = job.block
    return GenerateRequest(job.role, b.source, b.system, b.template, job.limit, b.timeout or timeout, b.prefill, b.stop,
                           b.seed, b.temperature, b.top_p, b.generation_prompt, b.history)
