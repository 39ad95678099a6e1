"""The MkDocs side of the worker: a Runner over its process (resolve/worker_process.py), started when first needed."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..core.protocol import (
    CodeOutcome,
    CodeRequest,
    GenerateOutcome,
    GenerateRequest,
    Runner,
    from_json,
    to_json,
)
from ..core.settings import Settings
from ..errors import WorkerError

if TYPE_CHECKING:  # tokens pages only
    from ..core.ranking import RankOutcome, RankRequest

NO_ANSWER = "the worker finished without sending its outcome"
RunnerFactory = Callable[[Settings, Callable[[str], None]], Runner]


class WorkerRunner:
    """A Runner backed by `python -m llmexec.worker`; the process and its models live until close()."""

    def __init__(self, settings: Settings, progress: Callable[[str], None]) -> None:
        self.settings = settings
        self.progress = progress
        from .worker_process import WorkerProcess  # with the first runner made: a cached build never makes one

        self.worker = WorkerProcess(settings.cache_dir / "worker.log", progress, self._heard)
        self.load_seconds = 0.0
        self.versions: dict[str, str] = {}
        self.machine: dict[str, Any] = {}  # CPU architecture, vector extensions, threads: recorded with each entry
        self._streamed: dict[int, dict[str, Any]] = {}  # outcomes of the current call, by index, as they finished
        self._death = ""  # why the worker died during the current call
        self._restored = 0  # leading blocks of the current page the worker did not run: it restored their state
        self.weights: dict[str, str] = {}  # role -> sha256 of weights made on this machine (tuned models)
        self._configured = False

    @property
    def process(self) -> Any:
        """The worker's process while it runs (None before the first call): `serve`'s background kills it to drop a call."""
        return self.worker.process

    def begin_build(self, settings: Settings) -> None:
        self.settings = settings  # same worker fingerprint (models, threads); limits and batch size may change
        self._configured = False  # models that failed to load are tried again once per build

    def run_code(self, page: str, blocks: Sequence[CodeRequest], resume: int = 0) -> tuple[int, list[CodeOutcome]]:
        done = self._outcomes(
            {"op": "code", "page": page, "blocks": [to_json(b) for b in blocks], "resume": resume},
            CodeOutcome,
            len(blocks),
        )
        return self._restored, [o for o in done if o is not None]

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateOutcome]:
        done = self._outcomes(
            {"op": "generate", "requests": [to_json(r) for r in requests]}, GenerateOutcome, len(requests), True
        )
        return [o or GenerateOutcome(status="crashed", error=self._death or NO_ANSWER) for o in done]

    def rank(self, requests: Sequence[RankRequest]) -> list[RankOutcome]:
        from ..core.ranking import RankOutcome  # tokens pages only: a build's start-up skips it

        done = self._outcomes(
            {"op": "rank", "requests": [to_json(r) for r in requests]}, RankOutcome, len(requests), True
        )
        return [o or RankOutcome(status="crashed", error=self._death or NO_ANSWER) for o in done]

    def _outcomes(
        self, message: dict[str, Any], outcome_type: type, count: int, independent: bool = False
    ) -> list[Any]:
        """The worker streams each outcome, with its index, as it is done (its result only says it is done). If the
        worker dies, the outcomes it finished are kept: in a page, the block it was on is reported as crashed and
        the rest is not run; of independent requests (generations, scorings: two models' lanes finish out of
        order), every one it had not finished is (None here)."""
        self._streamed, self._death, self._restored = {}, "", 0
        try:
            self._call(message)
        except WorkerError as exc:
            if not self._streamed and self.worker.process is None and not self._configured:
                raise  # it never started: the engine reports that once
            self._death = str(exc)
        found = [self._streamed.get(i) for i in range(self._restored, count)]
        if independent:
            return [None if o is None else from_json(outcome_type, o) for o in found]
        count -= self._restored
        first = found.index(None) if None in found else count
        done: list[Any] = [from_json(outcome_type, o) for o in found[:first] if o is not None]
        if not self._death or first == count:
            return done  # a page stops at its first failure: the blocks after it were not sent back
        return done + [outcome_type(status="crashed", error=self._death)] + [None] * (count - first - 1)

    def close(self) -> None:
        self.worker.close()

    def _call(self, message: dict[str, Any]) -> dict[str, Any]:
        started = None
        if not self.worker.alive():
            self._configured = False  # a new worker: configured anew
            started = time.perf_counter()
            self.worker.start(self.settings.project_dir)
        if not self._configured:
            self.worker.send(
                {
                    "op": "configure",
                    "models": {r: m.to_json() for r, m in self.settings.models.items()},
                    "model_cache": str(self.settings.model_cache_dir),
                    "threads": self.settings.threads,
                    "batch_size": self.settings.batch_size,
                    "memory_limit": self.settings.memory_limit,
                    "states": str(self.settings.states_dir),
                    "project_dir": str(self.settings.project_dir),
                    "contact_engines": self.settings.policy.trusted,  # nor train a tuned model:
                    "train": self.settings.policy.trusted,
                    "keys": self._keys(),
                }
            )
            configured = self.worker.receive("configured")
            self.versions, self.machine = configured.get("versions", {}), configured.get("machine", {})
            self._configured = True
        if started is not None:  # its start (importing torch and transformers) is loading, not the call's work
            self.load_seconds += time.perf_counter() - started
        self.worker.send(message)
        return self.worker.receive("result")

    def _keys(self) -> dict[str, str]:
        """The API keys of endpoint models, read from this build's environment (a worker started earlier, as
        under `serve`, sees a key exported since)."""
        names = {m.endpoint_options()["api_key_env"] for m in self.settings.models.values() if m.kind == "endpoint"}
        return {name: os.environ[name] for name in sorted(names) if name and os.environ.get(name)}

    def _heard(self, message: dict[str, Any]) -> None:
        """What the worker says before its answer: model loading (seconds, tuned weights), a page's restored state,
        and each outcome as it is done."""
        if message["op"] == "log":
            self.load_seconds += message.get("load_seconds", 0.0)
            self.weights.update(message.get("weights") or {})
            self.progress(message["message"])
        elif message["op"] == "restored":  # the worker restored the state after this many blocks
            self._restored = message["blocks"]
        elif message["op"] == "outcome":
            self._streamed[message["index"]] = message["outcome"]


class KeptRunner:
    """The engine's runner: created on a build's first miss, so that a build with nothing to execute never starts it
    (nor imports torch), and kept across `serve` rebuilds until closed."""

    def __init__(self, factory: RunnerFactory, progress: Callable[[str], None]) -> None:
        self.factory, self.progress = factory, progress
        self.runner: Runner | None = None

    def for_build(self, settings: Settings) -> Runner:
        if self.runner is None:
            self.runner = self.factory(settings, self.progress)
        self.runner.begin_build(settings)
        return self.runner

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()
            self.runner = None


_factory: RunnerFactory = WorkerRunner


def runner_factory() -> RunnerFactory:
    return _factory


@contextmanager
def use_runner(factory: RunnerFactory) -> Iterator[None]:
    """Run builds with another Runner (tests inject fakes through this, not by patching internals)."""
    global _factory
    previous, _factory = _factory, factory
    try:
        yield
    finally:
        _factory = previous
