"""The worker's process: started on demand, JSON lines each way, its death explained from its log."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..core.launch import child_env
from ..core.protocol import dumps
from ..errors import WorkerError, with_fix


class WorkerProcess:
    """`python -m llmexec.worker` and its pipes; what the worker says besides the awaited answer goes to `on_message`."""

    def __init__(
        self, log_path: Path, progress: Callable[[str], None], on_message: Callable[[dict[str, Any]], None]
    ) -> None:
        self.log_path, self.progress, self.on_message = log_path, progress, on_message
        self.process: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, cwd: Path) -> None:
        self.progress("starting the execution worker (imports torch and transformers)")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **child_env(),
            "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "TRANSFORMERS_VERBOSITY": "error",
            "PYTHONUNBUFFERED": "1",
            "MPLBACKEND": "Agg",
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "llmexec.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                cwd=str(cwd),
            )
        self.receive("ready")

    def send(self, message: dict[str, Any]) -> None:
        process = self._running()
        try:
            process.stdin.write(dumps(message))  # type: ignore[union-attr]  # stdin=PIPE: never None
            process.stdin.flush()  # type: ignore[union-attr]  # stdin=PIPE: never None
        except OSError:
            self._died(process)

    def receive(self, op: str) -> dict[str, Any]:
        """The next message `op`; the ones before it (logs, streamed outcomes) go to on_message."""
        process = self._running()
        for line in _lines(process):
            message = json.loads(line)
            if message["op"] == op:
                return message
            self.on_message(message)
        self._died(process)
        raise AssertionError("unreachable")

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

    def _running(self) -> subprocess.Popen[bytes]:
        assert self.process is not None, "the worker is started first"
        return self.process

    def _died(self, process: subprocess.Popen[bytes]) -> None:
        code = process.wait()
        self.process = None
        tail = _tail(self.log_path)
        if code < 0:  # a signal: nothing in the log explains it
            name = signal.Signals(-code).name
            raise WorkerError(
                with_fix(
                    f"the execution worker was killed by {name} while running this block",
                    (
                        "out of memory (the kernel's OOM killer sends SIGKILL), or killed from outside: by the block itself "
                        "(os.kill of its parent) or another process"
                        if name == "SIGKILL"
                        else f"look for what sent {name}"
                    )
                    + "; the next block starts a new worker",
                )
            )
        raise WorkerError(
            with_fix(
                f"the execution worker exited with code {code} while busy; last lines of its log "
                f"{self.log_path}:\n{tail}",
                "fix the cause above (a missing package: run `make setup`); the next build starts a new worker",
            )
        )


def _lines(process: subprocess.Popen[bytes]) -> Iterator[bytes]:
    assert process.stdout is not None
    while line := process.stdout.readline():
        yield line


def _tail(path: Path, lines: int = 12) -> str:
    try:
        return "\n".join("    " + line for line in path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "    (no log)"
