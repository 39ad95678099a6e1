"""The worker process: holds the models, and runs every job in a forked child so hangs and crashes stay contained."""

from __future__ import annotations

import ast
import io
import json
import os
import select
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, BinaryIO, Callable, Literal

from . import checkpoints, display, machine
from .models import ModelSpec
from .protocol import CodeOutcome, CodeRequest, GenerateOutcome, GenerateRequest, dumps, from_json, to_json

MAX_OUTPUT = 64 * 1024  # characters of a block's output kept; the rest is cut with a note
GB = 10**9
POLL_SECONDS = 0.05  # how often the zygote, waiting on a child, checks the child's memory


class Zygote:
    """Loads models in this process (never running them here: forked children would hang in OpenMP)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.specs: dict[str, ModelSpec] = {}
        self.model_cache = Path()
        self.threads = 1
        self.batch_size = 1
        self.memory_limit = 4.0  # GB a child may grow by (resident, anonymous) before it is killed
        self.states = Path()
        self.loaded: dict[str, Any] = {}
        self.failed: dict[str, str] = {}

    def send(self, **message: Any) -> None:
        self.out.write(dumps(message))
        self.out.flush()

    def log(self, text: str, **extra: Any) -> None:
        self.send(op="log", message=text, **extra)

    def configure(self, message: dict[str, Any]) -> None:
        self.specs = {role: ModelSpec.from_json(spec) for role, spec in message["models"].items()}
        self.model_cache = Path(message["model_cache"])
        self.threads = int(message["threads"])
        self.batch_size = int(message.get("batch_size", 1))
        self.memory_limit = float(message.get("memory_limit", 4.0))
        self.states = Path(message["states"])
        self.failed.clear()  # a new build tries again models that failed to load before

    def model(self, role: str):
        """The loaded model for a role; a load failure is remembered and raised as ModelUnavailable."""
        from .runtime import ModelUnavailable, load_model

        if role in self.failed:
            raise ModelUnavailable(self.failed[role])
        if role not in self.loaded:
            spec = self.specs[role]
            self.log(f"loading {role} model: {spec.artifact}")
            started = time.perf_counter()
            try:
                self.loaded[role] = load_model(spec, self.model_cache, self.log, self.threads)
            except Exception as exc:  # every load failure becomes a message on the blocks that needed it
                self.failed[role] = f"model '{role}' could not be loaded: {exc}"
                raise ModelUnavailable(self.failed[role]) from None
            weights = self.loaded[role].training.get("weights_sha256", "")
            self.log(f"loaded {role} model in {time.perf_counter() - started:.1f} s",
                     load_seconds=time.perf_counter() - started, weights={role: weights} if weights else {})
        return self.loaded[role]

    def preload(self, roles: set[str]) -> None:
        from .runtime import ModelUnavailable

        for role in sorted(roles & set(self.specs)):
            try:
                self.model(role)
            except ModelUnavailable:
                pass  # reported by the block that uses it

    def run_code(self, page: str, blocks: list[CodeRequest], resume: int = 0) -> list[CodeOutcome]:
        names = set()
        for block in blocks:
            try:
                names |= {n.id for n in ast.walk(ast.parse(block.code)) if isinstance(n, ast.Name)}
            except SyntaxError:
                pass  # the child reports it with its page line
        self.preload(names | ({"base", "instruct"} if "models" in names else set()))
        return self._in_children(blocks, lambda rest, report: self._code_child(rest, report, resume), CodeOutcome,
                                 independent=False)

    def generate(self, requests: list[GenerateRequest]) -> list[GenerateOutcome]:
        self.preload({r.model for r in requests})
        return self._in_children(requests, self._generate_child, GenerateOutcome, independent=True)

    def _in_children(self, items: list, child: Callable[[list, BinaryIO], None], outcome_type, *,
                     independent: bool) -> list:
        """Fork a child that reports one JSON line per item (and its log lines) on its own pipe; enforce each item's
        time limit and the memory limit. A fault ends that child: code pages stop there (their state is gone);
        independent generation requests go on in a fresh child. Only this process writes the protocol channel."""
        outcomes: list = []

        def add(outcome: Any) -> None:  # streamed at once: if this process dies, what finished is not lost
            outcomes.append(outcome)
            self.send(op="outcome", outcome=to_json(outcome))

        while len(outcomes) < len(items):
            rest = items[len(outcomes):]
            read_fd, write_fd = os.pipe()
            baseline = _anon_bytes("self")  # the child starts with the zygote's pages, models included
            pid = os.fork()
            if pid == 0:  # child
                os.close(read_fd)
                _orphan_guard(self.out)
                code = 0
                try:
                    with os.fdopen(write_fd, "wb") as report:
                        self.out = report  # its log lines (model loads, batches) go through the parent
                        child(rest, report)
                except BaseException:
                    traceback.print_exc(file=sys.__stderr__)  # into the worker log: a fault of this module, not a block's
                    code = 70
                os._exit(code)
            os.close(write_fd)
            watch = _Watch(pid, read_fd, baseline, self.memory_limit)
            try:
                for item in rest:
                    line = watch.next_line(item.timeout)
                    while isinstance(line, bytes) and line.startswith(b'{"op": "log"'):
                        self.send(**json.loads(line))  # a log line of the child: passed on, the item still runs
                        line = watch.next_line(item.timeout)
                    if isinstance(line, bytes):
                        add(from_json(outcome_type, json.loads(line)))
                        if outcomes[-1].status not in ("ok", "restored") and not independent:
                            break
                        continue
                    if line == "eof":
                        add(outcome_type(status="crashed", error=_death(pid)))
                        pid = 0
                    else:
                        add(outcome_type(status=line, error=watch.fault(line, item.timeout)))
                    break
            finally:
                os.close(read_fd)
                if pid:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    os.waitpid(pid, 0)
            if not independent and len(outcomes) < len(items):
                break
        return outcomes

    def _code_child(self, blocks: list[CodeRequest], report: BinaryIO, resume: int) -> None:
        import torch

        from . import runtime
        from .runtime import ModelHandle

        torch.set_num_threads(self.threads)
        used: set[str] = set()
        shown: list[dict[str, str]] = []
        handles = {role: ModelHandle(role, self.model, used) for role in self.specs}
        runtime.HANDLES.update(handles)
        noted: dict[str, Any] = {}
        namespace: dict[str, Any] = {"__name__": "__main__", "models": handles, **handles,
                                     "display": lambda *values: shown.extend(display.mime_bundle(v) for v in values),
                                     "note": lambda **values: noted.update(display.notes(values))}
        reserved = set(namespace)
        state = checkpoints.restore(checkpoints.path(self.states, blocks[resume - 1].key)) if resume else None
        capture = tempfile.TemporaryFile()
        os.dup2(capture.fileno(), 1)
        os.dup2(capture.fileno(), 2)
        stream = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), encoding="utf-8", errors="backslashreplace",
                                  write_through=True)
        sys.stdout = sys.stderr = stream
        if state is not None:  # the earlier blocks' outputs are cached; their state is all that is needed
            namespace.update(state)
            for _ in blocks[:resume]:
                report.write(dumps(to_json(CodeOutcome(status="restored"))))
            report.flush()
            blocks = blocks[resume:]
        for block in blocks:
            start = os.lseek(1, 0, os.SEEK_END)
            started = time.perf_counter()
            error = ""
            shown.clear()
            noted.clear()
            used.clear()  # the models this block touched, for its provenance caption
            try:
                display.run(block.code, block.filename, block.first_line, namespace,
                            display_last=block.display_last, shown=shown)
            except BaseException as exc:  # SystemExit and KeyboardInterrupt are snippet failures too
                error = _snippet_traceback(exc)
            stream.flush()
            output = _read_from(1, start)
            outcome = CodeOutcome(status="error" if error else "ok", output=output, error=error,
                                  seconds=round(time.perf_counter() - started, 3), models_used=tuple(sorted(used)),
                                  rich=tuple(shown), notes=dict(noted))
            if not error and block.key:
                checkpoints.save(namespace, reserved, checkpoints.path(self.states, block.key))
            report.write(dumps(to_json(outcome)))
            report.flush()
            if error:
                return

    def _generate_child(self, requests: list[GenerateRequest], report: BinaryIO) -> None:
        """Consecutive requests for the same model and length run as one left-padded batch."""
        import torch

        torch.set_num_threads(self.threads)
        batches: list[list[GenerateRequest]] = []
        for request in requests:
            last = batches[-1] if batches else None
            if (last and len(last) < self.batch_size and last[0].batch_key() == request.batch_key()
                    and request.seed is None):  # a seeded draw runs alone: the random stream is shared in a batch
                last.append(request)
            else:
                batches.append([request])
        for number, batch in enumerate(batches, 1):
            self.log(f"generating batch {number}/{len(batches)}: {batch[0].model} model, {len(batch)} prompt(s), "
                     f"{batch[0].max_new_tokens} new tokens at most")
            for outcome in self._generate_batch(batch):
                report.write(dumps(to_json(outcome)))
            report.flush()

    def _generate_batch(self, batch: list[GenerateRequest]) -> list[GenerateOutcome]:
        from .runtime import Prompt, Sampling

        first = batch[0]
        try:
            model = self.model(first.model)
            results = model.generate_batch([Prompt(r.prompt, r.template, r.system, r.prefill, (), r.generation_prompt)
                                            for r in batch], first.max_new_tokens,
                                           Sampling(first.seed, first.temperature, first.top_p), first.stop)
        except Exception as exc:
            if len(batch) > 1:  # find which prompt failed (e.g. system= without a chat template): run them alone
                return [o for request in batch for o in self._generate_batch([request])]
            return [GenerateOutcome(status="error", error=f"{type(exc).__name__}: {exc}")]
        return [GenerateOutcome(status="ok", input_text=g.input_text, input_tokens=g.input_tokens, text=g.text,
                                finish_reason=g.finish_reason, new_tokens=g.new_tokens, seconds=g.seconds,
                                batch_size=len(batch), decoding=g.decoding)
                for g in results]


class _Watch:
    """A child seen from the zygote: its report lines, read from the raw pipe (select() cannot see what a buffered
    reader has already pulled in), each within its time limit, while its memory growth since the fork is polled."""

    def __init__(self, pid: int, fd: int, baseline: int, limit_gb: float) -> None:
        self.pid, self.fd, self.baseline, self.limit_gb = pid, fd, baseline, limit_gb
        self.buffer = bytearray()
        self.grown = 0

    def next_line(self, timeout: float) -> bytes | Literal["eof", "timeout", "memory"]:
        deadline, checked = time.monotonic() + timeout, 0.0
        while (end := self.buffer.find(b"\n")) < 0:
            now = time.monotonic()
            if now - checked >= POLL_SECONDS:
                checked, self.grown = now, _anon_bytes(self.pid) - self.baseline
                if self.grown > self.limit_gb * GB:
                    return "memory"
            if now >= deadline:
                return "timeout"
            ready, _, _ = select.select([self.fd], [], [], min(deadline - now, POLL_SECONDS))
            if ready:
                data = os.read(self.fd, 1 << 16)
                if not data:
                    return "eof"
                self.buffer += data
        line = bytes(self.buffer[:end])
        del self.buffer[:end + 1]
        return line

    def fault(self, kind: str, timeout: float) -> str:
        if kind == "memory":
            return (f"ran past its memory limit of {self.limit_gb:g} GB (its process had grown by "
                    f"{self.grown / GB:.2f} GB when it was stopped)")
        return f"stopped after its time limit of {timeout:g} s"


def _anon_bytes(pid: int | str) -> int:
    """Resident anonymous memory (RssAnon) of a process, 0 once it is gone. File pages, such as memory-mapped
    weights, are left out: the kernel can drop them."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"RssAnon:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _orphan_guard(protocol: BinaryIO) -> None:
    """In a forked child: drop the worker's protocol pipe and stdin, so that if the worker dies the build sees it
    at once (no orphan keeps the pipe open), and ask the kernel to kill this child when the worker dies."""
    protocol.close()
    try:
        os.close(0)
    except OSError:
        pass
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001
        pass  # not Linux: the closed pipe still lets the build see the worker's death


def _death(pid: int) -> str:
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        hint = " (killed: out of memory?)" if name == "SIGKILL" else ""
        return f"the process running it died from {name}{hint}"
    return f"the process running it exited with code {os.WEXITSTATUS(status)} before finishing"


def _read_from(fd: int, start: int) -> str:
    size = os.lseek(fd, 0, os.SEEK_END) - start
    data = os.pread(fd, min(size, MAX_OUTPUT * 4), start).decode("utf-8", errors="backslashreplace")
    if len(data) > MAX_OUTPUT or size > MAX_OUTPUT * 4:
        data = data[:MAX_OUTPUT] + f"\n… output cut: {size} bytes in all, {MAX_OUTPUT} characters shown\n"
    return data


def _snippet_traceback(exc: BaseException) -> str:
    """The traceback without this module's frames: it starts at the snippet's own line."""
    te = traceback.TracebackException.from_exception(exc)
    ours = (__file__, display.__file__)
    te.stack = traceback.StackSummary.from_list([f for f in te.stack if f.filename not in ours])
    return "".join(te.format()).rstrip("\n")


def _versions() -> dict[str, str]:
    """The libraries that determine outputs, recorded with every result."""
    import platform

    import tokenizers
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "tokenizers": tokenizers.__version__}


def main() -> None:
    out = os.fdopen(os.dup(1), "wb")  # the protocol channel; stray prints below go to stderr, not into it
    os.dup2(2, 1)
    zygote = Zygote(out)
    zygote.send(op="ready", pid=os.getpid())
    for raw in sys.stdin.buffer:
        message = json.loads(raw)
        op = message["op"]
        if op == "configure":
            zygote.configure(message)
            zygote.send(op="configured", versions=_versions(), machine=machine.describe(zygote.threads))
        elif op == "code":
            blocks = [from_json(CodeRequest, b) for b in message["blocks"]]
            outcomes = zygote.run_code(message["page"], blocks, message.get("resume", 0))
            zygote.send(op="result", outcomes=[to_json(o) for o in outcomes])
        elif op == "generate":
            requests = [from_json(GenerateRequest, r) for r in message["requests"]]
            zygote.send(op="result", outcomes=[to_json(o) for o in zygote.generate(requests)])
        elif op == "shutdown":
            break


if __name__ == "__main__":
    main()
