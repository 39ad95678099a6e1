"""The MkDocs side of the worker: starts it lazily, talks JSON lines to it, restarts it when it dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..core.launch import child_env
from ..core.protocol import (
    CodeOutcome,
    CodeRequest,
    GenerateOutcome,
    GenerateRequest,
    RankOutcome,
    RankRequest,
    Runner,
    dumps,
    from_json,
    to_json,
)
from ..core.settings import Settings
from ..errors import WorkerError, with_fix

RunnerFactory = Callable[[Settings, Callable[[str], None]], Runner]


class WorkerRunner:
    """A Runner backed by `python -m llmexec.worker`; the process and its models live until close()."""

    def __init__(self, settings: Settings, progress: Callable[[str], None]) -> None:
        self.settings = settings
        self.progress = progress
        self.log_path = settings.cache_dir / "worker.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.load_seconds = 0.0
        self.versions: dict[str, str] = {}
        self.machine: dict[str, Any] = {}  # CPU architecture, vector extensions, threads: recorded with each entry
        self._streamed: dict[int, dict[str, Any]] = {}  # outcomes of the current call, by index, as they finished
        self._death = ""  # why the worker died during the current call
        self._restored = 0  # leading blocks of the current page the worker did not run: it restored their state
        self.weights: dict[str, str] = {}  # role -> sha256 of weights made on this machine (tuned models)
        self._configured = False

    def begin_build(self, settings: Settings) -> None:
        self.settings = settings  # same worker fingerprint (models, threads); limits and batch size may change
        self._configured = False  # models that failed to load are tried again once per build

    def run_code(self, page: str, blocks: Sequence[CodeRequest], resume: int = 0) -> tuple[int, list[CodeOutcome]]:
        done = self._outcomes({"op": "code", "page": page, "blocks": [to_json(b) for b in blocks], "resume": resume},
                              CodeOutcome, len(blocks))
        return self._restored, [o for o in done if o is not None]

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateOutcome]:
        done = self._outcomes({"op": "generate", "requests": [to_json(r) for r in requests]}, GenerateOutcome,
                              len(requests))
        return [o or GenerateOutcome(status="crashed", error=self._death) for o in done]

    def rank(self, requests: Sequence[RankRequest]) -> list[RankOutcome]:
        done = self._outcomes({"op": "rank", "requests": [to_json(r) for r in requests]}, RankOutcome, len(requests))
        return [o or RankOutcome(status="crashed", error=self._death) for o in done]

    def _outcomes(self, message: dict[str, Any], outcome_type: type, count: int) -> list[Any]:
        """The worker streams each outcome, with its index, as it is done (its result only says it is done). If the
        worker dies, the outcomes it finished are kept: in a page, the block it was on is reported as crashed and
        the rest is not run; in a generation batch, every answer it had not finished is."""
        self._streamed, self._death, self._restored = {}, "", 0
        try:
            self._call(message)
        except WorkerError as exc:
            if not self._streamed and self.process is None and not self._configured:
                raise  # it never started: the engine reports that once
            self._death = str(exc)
        found = [self._streamed.get(i) for i in range(self._restored, count)]
        count -= self._restored
        first = found.index(None) if None in found else count
        done: list[Any] = [from_json(outcome_type, o) for o in found[:first] if o is not None]
        if not self._death or first == count:
            return done  # a page stops at its first failure: the blocks after it were not sent back
        return done + [outcome_type(status="crashed", error=self._death)] + [None] * (count - first - 1)

    def close(self) -> None:
        if self.process and self.process.poll() is None:
            try:
                self.process.stdin.write(dumps({"op": "shutdown"}))  # type: ignore[union-attr]  # stdin=PIPE: never None
                self.process.stdin.flush()  # type: ignore[union-attr]  # stdin=PIPE: never None
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        self.process = None

    def _call(self, message: dict[str, Any]) -> dict[str, Any]:
        process = self._ensure_started()
        if not self._configured:
            self._send(process, {"op": "configure", "models": {r: m.to_json() for r, m in self.settings.models.items()},
                                 "model_cache": str(self.settings.model_cache_dir), "threads": self.settings.threads,
                                 "batch_size": self.settings.batch_size, "memory_limit": self.settings.memory_limit,
                                 "states": str(self.settings.states_dir),
                                 "project_dir": str(self.settings.project_dir),
                                 "contact_engines": self.settings.policy.trusted,  # nor train a tuned model:
                                 "train": self.settings.policy.trusted, "keys": self._keys()})
            configured = self._receive(process, "configured")
            self.versions, self.machine = configured.get("versions", {}), configured.get("machine", {})
            self._configured = True
        self._send(process, message)
        return self._receive(process, "result")

    def _keys(self) -> dict[str, str]:
        """The API keys of endpoint models, read from this build's environment (a worker started earlier, as
        under `serve`, sees a key exported since)."""
        names = {m.endpoint_options()["api_key_env"] for m in self.settings.models.values() if m.kind == "endpoint"}
        return {name: os.environ[name] for name in sorted(names) if name and os.environ.get(name)}

    def _ensure_started(self) -> subprocess.Popen[bytes]:
        if self.process is not None and self.process.poll() is None:
            return self.process
        self.progress("starting the execution worker (imports torch and transformers)")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**child_env(), "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1", "TRANSFORMERS_VERBOSITY": "error", "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "llmexec.worker"], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=log, env=env, cwd=str(self.settings.project_dir))
        self._configured = False
        self._receive(self.process, "ready")
        return self.process

    def _send(self, process: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
        try:
            process.stdin.write(dumps(message))  # type: ignore[union-attr]  # stdin=PIPE: never None
            process.stdin.flush()  # type: ignore[union-attr]  # stdin=PIPE: never None
        except OSError:
            self._died(process)

    def _receive(self, process: subprocess.Popen[bytes], op: str) -> dict[str, Any]:
        for line in _lines(process):
            message = json.loads(line)
            if message["op"] == "log":
                self.load_seconds += message.get("load_seconds", 0.0)
                self.weights.update(message.get("weights") or {})
                self.progress(message["message"])
            elif message["op"] == "restored":  # the worker restored the state after this many blocks
                self._restored = message["blocks"]
            elif message["op"] == "outcome":
                self._streamed[message["index"]] = message["outcome"]
            elif message["op"] == op:
                return message
        self._died(process)
        raise AssertionError("unreachable")

    def _died(self, process: subprocess.Popen[bytes]) -> None:
        code = process.wait()
        self.process = None
        tail = _tail(self.log_path)
        if code < 0:  # a signal: nothing in the log explains it
            name = signal.Signals(-code).name
            raise WorkerError(with_fix(
                f"the execution worker was killed by {name} while running this block",
                ("out of memory (the kernel's OOM killer sends SIGKILL), or killed from outside: by the block itself "
                 "(os.kill of its parent) or another process" if name == "SIGKILL" else f"look for what sent {name}")
                + "; the next block starts a new worker"))
        raise WorkerError(with_fix(f"the execution worker exited with code {code} while busy; last lines of its log "
                                   f"{self.log_path}:\n{tail}",
                                   "fix the cause above (a missing package: run `make setup`); the next build starts a new worker"))


def _lines(process: subprocess.Popen[bytes]) -> Iterator[bytes]:
    assert process.stdout is not None
    while line := process.stdout.readline():
        yield line


def _tail(path: Path, lines: int = 12) -> str:
    try:
        return "\n".join("    " + line for line in path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "    (no log)"


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
