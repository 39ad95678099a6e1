"""A result for every planned block: from the lockfile or the cache, else from the runner, under the mode's policy."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from ..core.files import checkpoint_path
from ..core.protocol import CodeOutcome, CodeRequest, GenerateOutcome, GenerateRequest, RankOutcome, Runner, from_json
from ..core.settings import Settings
from ..errors import with_fix
from ..plan.page import Job, PagePlan
from ..plan.tokens import RankJob
from ..vocabulary import FIXES
from . import entries, since
from .cache import ResultCache
from .deferred import Background, Provenance
from .ranks import resolve_ranks
from .recorder import Recorder
from .store import Store


class Resolver:
    """One build's resolution; the runner (and its loaded models) outlives it, for `serve`."""

    def __init__(self, settings: Settings, runner: Callable[[], Runner], report: Callable[[str], None],
                 progress: Callable[[str], None]) -> None:
        self.settings, self._runner, self.report, self.progress = settings, runner, report, progress
        self.fresh: dict[str, GenerateOutcome] = {}  # generated in this build (prefetch), failures too
        only = since.changed_keys(settings.lockfile, settings.since) if settings.policy.compares and settings.since else None
        if only is not None:
            progress(f"verify: {len(only)} lockfile entr{'y' if len(only) == 1 else 'ies'} added or changed since "
                     f"{settings.since}; only their blocks (and the code blocks they depend on) are re-executed")
        self.store = Store(settings.policy, ResultCache(settings.lockfile), ResultCache(settings.cache_dir / "results"),
                           progress, report, only=only)
        self.recorder = Recorder(settings, self.store, report, progress)
        self.runner: Runner | None = None  # set on the first call: a build with nothing to execute never starts one
        self._loaded_before = 0.0  # the runner's seconds of model loading when this build first called it
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
                found[key] = self.recorder.unexecuted(entries.generate(job, None, self.settings.models, {}), GenerateOutcome)
        elif misses:
            found.update(self._generate(list(misses.values())))
        return found

    def _generate(self, jobs: list[Job]) -> dict[str, GenerateOutcome]:
        if self.deferred is not None:  # `serve`: shown pending now, recorded by the build after they are done
            return self.deferred.resolve(self, jobs, self._start)
        self.progress(f"generating {len(jobs)} answer(s) for {len({(j.block.page, j.block.line) for j in jobs})} block(s)")
        requests = [_request(j, self.settings.timeout) for j in jobs]
        outcomes = self._call("generation", lambda: self._start().generate(requests), GenerateOutcome)
        outcomes += [GenerateOutcome(status="skipped", error="not run: the worker stopped")] * (len(jobs) - len(outcomes))
        return self.settle(jobs, outcomes, self._provenance())

    def settle(self, jobs: list[Job], outcomes: list[GenerateOutcome], provenance: Provenance) -> dict[str, GenerateOutcome]:
        """Generated answers recorded and their failures reported: this build's, or finished in the background."""
        for job, outcome in zip(jobs, outcomes):
            self.fresh[job.key] = outcome
            self.recorder.record(job.key, entries.generate(job, outcome, self.settings.models, *provenance))
            if outcome.status not in ("ok", "unexecuted"):
                what = (f"evaluate block, request {job.item} on {job.variant}," if job.item
                        else f"generate block, column {job.variant}," if job.variant else "generate block")
                self.report(with_fix(f"{job.block.where}: {what} failed on the {job.role} model: {outcome.error}",
                                     FIXES.get(outcome.status, "see the message above")))
        return {job.key: outcome for job, outcome in zip(jobs, outcomes)}

    def ranks(self, jobs: list[RankJob]) -> dict[str, RankOutcome]:
        """Recorded answers scored under another model (tokens blocks): looked up, else run in one batched call."""
        return resolve_ranks(self, jobs)

    # -- code ------------------------------------------------------------------------------------

    def code(self, plan: PagePlan) -> list[CodeOutcome]:
        """A page's code blocks in order: cached, or run (from the last checkpoint that lets it resume)."""
        blocks, keys = list(plan.code), list(plan.code_keys)
        if not blocks:
            return []
        hits = [self.store.lookup(key) for key in keys]
        if all(hit is not None for hit in hits):
            self.recorder.stats.cached += len(blocks)
            return [from_json(CodeOutcome, hit) for hit in hits if hit is not None]  # all are
        if not self.store.may_execute:
            return [from_json(CodeOutcome, hit) if hit is not None else
                    self.recorder.unexecuted(entries.code(b, i, None, self.settings.models, {}), CodeOutcome)
                    for i, (b, hit) in enumerate(zip(blocks, hits))]
        preview = not self.settings.policy.trusted  # untrusted code: its state is never pickled nor restored
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
        self.recorder.stats.cached += start
        outcomes = [from_json(CodeOutcome, hit) for hit in hits[:start]] + ran  # type: ignore[arg-type]  # resumed after cached blocks only
        stop = next(((b, o) for b, o in zip(blocks, outcomes) if o.status != "ok"), None)
        what = "was not executed" if stop and stop[1].status == "unexecuted" else "failed"
        while len(outcomes) < len(blocks):
            outcomes.append(CodeOutcome(status="skipped", error=f"not run: the block at "
                                        f"{stop[0].where if stop else 'an earlier block'} {what}, and later blocks "
                                        "on a page depend on the earlier ones"))
        for index in range(start, len(blocks)):
            self.recorder.record(keys[index], entries.code(blocks[index], index, outcomes[index], self.settings.models,
                                                   *self._provenance()))
            self.recorder.failure(blocks[index], outcomes[index])
        return outcomes

    def _resume_point(self, keys: list[str], hits: list[dict[str, Any] | None]) -> int:
        """How many leading blocks need not run: all cached, and the state after the last of them checkpointed."""
        for k in range(len(keys) - 1, 0, -1):
            if all(hit is not None for hit in hits[:k]) and checkpoint_path(self.settings.states_dir, keys[k - 1]).is_file():
                return k
        return 0

    # -- shared ----------------------------------------------------------------------------------

    def _start(self) -> Runner:
        if self.runner is None:
            self.runner = self._runner()
            self._loaded_before = getattr(self.runner, "load_seconds", 0.0)  # loaded by earlier builds (`serve`)
        return self.runner

    def _call(self, kind: str, call: Callable[[], list[Any]], outcome_type: type) -> list[Any]:
        """The runner boundary: whatever it raises becomes a failed outcome with the message, not a traceback.
        Also splits the wall time between model loading and `kind`."""
        started, loaded = time.perf_counter(), getattr(self.runner, "load_seconds", None)
        try:
            return call()
        except Exception as exc:  # reported on the page and in the log
            return [outcome_type(status="crashed", error=str(exc) or type(exc).__name__)]
        finally:  # a runner kept from the build before (`serve`) counts only the models loaded since this build began
            loaded = self._loaded_before if loaded is None else loaded
            loading = getattr(self.runner, "load_seconds", loaded) - loaded
            self.recorder.stats.loading += loading
            setattr(self.recorder.stats, kind, getattr(self.recorder.stats, kind) + time.perf_counter() - started - loading)

    def _provenance(self) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
        """Library versions, the machine, and tuned weights: recorded with every entry the runner produced."""
        versions, machine, weights = (dict(getattr(self.runner, name, {}) or {}) for name in ("versions", "machine", "weights"))
        return versions, machine, weights



def _request(job: Job, timeout: float) -> GenerateRequest:
    return GenerateRequest(job.role, job.request, job.block.timeout or timeout)
