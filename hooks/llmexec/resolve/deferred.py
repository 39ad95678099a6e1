"""Under `mkdocs serve`: missing generations run in the background on the warm worker while the page shows them pending."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.protocol import CodeOutcome, CodeRequest, GenerateOutcome, GenerateRequest, Runner
from ..core.ranking import RankOutcome, RankRequest
from ..core.settings import Settings
from ..plan.page import Job

Provenance = tuple[dict[str, str], dict[str, Any], dict[str, str]]  # versions, machine, tuned weights


class Settler(Protocol):
    """What of a build's resolver the background uses (resolve/resolver.py): records what finished, reports."""

    settings: Settings
    fresh: dict[str, GenerateOutcome]
    report: Callable[[str], None]
    progress: Callable[[str], None]

    def settle(
        self, jobs: list[Job], outcomes: list[GenerateOutcome], provenance: Provenance
    ) -> dict[str, GenerateOutcome]: ...


class Serialized:
    """The runner every build and the background share: the worker behind one pipe runs one call at a time, so each
    call takes the one lock (a code block executed while a generation runs waits for it)."""

    def __init__(self, runner: Runner) -> None:
        self.runner, self.lock = runner, threading.Lock()
        self._settings: Any = None  # a build's settings, handed to the runner before its next call

    def __getattr__(self, name: str) -> Any:  # load_seconds, versions, machine, weights, process
        return getattr(self.runner, name)

    def begin_build(self, settings: Any) -> None:
        self._settings = settings  # never waits for a generation running in the background

    def run_code(self, page: str, blocks: Sequence[CodeRequest], resume: int = 0) -> tuple[int, list[CodeOutcome]]:
        with self.lock:
            self._begin()
            return self.runner.run_code(page, blocks, resume)

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateOutcome]:
        with self.lock:
            self._begin()
            return self.runner.generate(requests)

    def rank(self, requests: Sequence[RankRequest]) -> list[RankOutcome]:
        with self.lock:
            self._begin()
            return self.runner.rank(requests)

    def close(self) -> None:
        got = self.lock.acquire(timeout=10)  # the background was told to stop first: this only guards a stuck one
        try:
            self.runner.close()
        finally:
            if got:
                self.lock.release()

    def _begin(self) -> None:
        if self._settings is not None:
            self.runner.begin_build(self._settings)
            self._settings = None


@dataclass(frozen=True)
class Finished:
    """A background generation, done: its outcome and what the runner reported with it, until a build records it."""

    job: Job
    outcome: GenerateOutcome
    provenance: Provenance


def pending(job: Job) -> GenerateOutcome:
    """What a page shows while its answer is generated: the prompt, and a note that the page reloads."""
    request = job.request
    shown = "\n\n".join(f"{role}: {text}" for role, text in request.messages) if request.messages else request.prompt
    return GenerateOutcome(
        status="pending",
        input_text=shown,
        error=f"Generating on the {job.role} model… this page reloads when the answer is ready",
    )


class Background:
    """Lives across `serve` rebuilds: one thread runs one generation call at a time on the shared runner; a build
    finds a key in flight (shown pending, never sent twice) or finished (recorded by that build, exactly as if it had
    generated it). `notify` asks MkDocs for one more rebuild when a call is done."""

    def __init__(self, notify: Callable[[], None]) -> None:
        self.notify = notify
        self.flight: dict[str, Job] = {}  # queued or running
        self.finished: dict[str, Finished] = {}
        self.errors: list[str] = []  # a notification that failed: reported by the next build
        self._jobs: queue.Queue[tuple[int, Serialized, list[Job], float]] = queue.Queue()
        self._state = threading.Lock()  # guards flight, finished and the epoch
        self._epoch = 0  # bumped when the work is abandoned: a call of an older epoch is dropped when it returns
        self._idle = threading.Event()
        self._idle.set()
        self._between_builds = threading.Event()  # cleared while a build renders: its calls are sent when it ends
        self._between_builds.set()
        self._running: Serialized | None = None
        self._thread: threading.Thread | None = None

    def resolve(self, resolver: Settler, jobs: list[Job], start: Callable[[], Runner]) -> dict[str, GenerateOutcome]:
        """The finished ones recorded by this build; the others pending, the new ones sent to the background."""
        with self._state:  # the build's own job is recorded (its page:line), not the one that asked first
            done = [(job, self.finished.pop(job.key)) for job in jobs if job.key in self.finished]
            new = [job for job in jobs if job.key not in self.flight and job.key not in {j.key for j, _ in done}]
            for job in new:
                self.flight[job.key] = job
            epoch = self._epoch
        for message in self._drain():
            resolver.report(message)
        found = {job.key: pending(job) for job in jobs}
        for job, item in done:
            found.update(resolver.settle([job], [item.outcome], item.provenance))
        if new:
            resolver.progress(
                f"generating {len(new)} answer(s) in the background; the page reloads when they are ready"
            )
            runner = start()
            assert isinstance(runner, Serialized), "the engine hands out its runner serialized"
            self._jobs.put((epoch, runner, new, resolver.settings.timeout))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="llmexec-background", daemon=True)
                self._thread.start()
        resolver.fresh.update(found)
        return found

    def build_started(self) -> None:
        """A build renders its pages: the calls it queues wait until it ends, so that the page the user waits for is
        not slowed by generating (at 50 pages on 2 cores, MkDocs' part of the rebuild took 0.74 s beside a
        generation, against 0.55 s for a plain rebuild)."""
        self._between_builds.clear()

    def build_ended(self) -> None:
        """The build is done (or failed): the calls it queued are sent."""
        self._between_builds.set()

    def _loop(self) -> None:
        while True:
            epoch, runner, jobs, timeout = self._jobs.get()
            self._between_builds.wait()
            if epoch != self._epoch:
                continue
            self._idle.clear()
            self._running = runner
            try:
                outcomes = runner.generate(
                    [GenerateRequest(j.role, j.request, j.block.timeout or timeout) for j in jobs]
                )
            except Exception as exc:  # the same boundary as a build's: a failed outcome that names the error
                outcomes = [GenerateOutcome(status="crashed", error=str(exc) or type(exc).__name__)]
            finally:
                self._running = None
                self._idle.set()
            outcomes += [GenerateOutcome(status="skipped", error="not run: the worker stopped")] * (
                len(jobs) - len(outcomes)
            )
            versions, machine, weights = (
                dict(getattr(runner, n, {}) or {}) for n in ("versions", "machine", "weights")
            )
            with self._state:
                if epoch != self._epoch:
                    continue  # abandoned (shutdown, new models) while it ran
                for job, outcome in zip(jobs, outcomes):
                    self.flight.pop(job.key, None)
                    self.finished[job.key] = Finished(job, outcome, (versions, machine, weights))
            try:
                self.notify()
            except Exception as exc:  # reported by the next build, never lost
                self.errors.append(
                    f"the answers generated in the background are ready, but asking `mkdocs serve` to "
                    f"rebuild failed ({exc}); save a page to see them"
                )

    def _drain(self) -> list[str]:
        errors, self.errors = self.errors, []
        return errors

    def abandon(self, resolver: Settler | None = None) -> None:
        """Shutdown, or a worker restarted for other models: queued calls are dropped and a running one is stopped
        (its worker killed: nothing half-done is stored); answers already finished are recorded by `resolver`."""
        with self._state:
            self._epoch += 1
            finished, self.finished, self.flight = list(self.finished.values()), {}, {}
        running = self._running
        process = getattr(running, "process", None) if running is not None else None
        if process is not None and process.poll() is None:
            process.kill()  # the worker's pipe closes; the call returns at once and is dropped
        self._idle.wait(timeout=5)
        for item in finished:
            if resolver is not None and item.outcome.status == "ok":  # a failure is simply generated again
                resolver.settle([item.job], [item.outcome], item.provenance)
