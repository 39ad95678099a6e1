"""Worker side: forking a job's child and watching it (its report lines, time limit, memory growth, death)."""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO, Literal

from ..core.protocol import from_json, to_json
from .host import Host

GB = 10**9
POLL_SECONDS = 0.05  # how often the zygote, waiting on a child, checks the child's memory
_done: set[int] = set()  # children that reported everything, killed and not yet reaped (_reap)


def run_in_children(
    zygote: Host,
    items: list,
    child: Callable[[list, BinaryIO], None],
    outcome_type,
    *,
    independent: bool,
    indices: list[int] | None = None,
) -> list:
    """Fork a child that reports one JSON line per item (and its log lines) on its own pipe; enforce each item's
    time limit and the memory limit. A fault ends that child: code pages stop there (their state is gone);
    independent generation requests go on in a fresh child. Only this process writes the protocol channel."""
    _reap()
    outcomes: list = []
    skipped = 0  # leading items a code page's child did not run: it restored the state after them

    def add(outcome: Any) -> None:  # streamed at once: if this process dies, what finished is not lost
        outcomes.append(outcome)
        position = skipped + len(outcomes) - 1
        zygote.send(op="outcome", index=indices[position] if indices else position, outcome=to_json(outcome))

    while skipped + len(outcomes) < len(items):
        rest = items[skipped + len(outcomes) :]
        read_fd, write_fd = os.pipe()
        baseline = _anon_bytes("self")  # the child starts with the zygote's pages, models included
        pid = zygote.fork()
        if pid == 0:  # child
            os.close(read_fd)
            _orphan_guard(zygote.out)
            code = 0
            try:
                with os.fdopen(write_fd, "wb") as report:
                    zygote.out = report  # its log lines (model loads, batches) go through the parent
                    child(rest, report)
            except BaseException:
                traceback.print_exc(file=sys.__stderr__)  # into the worker log: a fault of this module, not a block's
                code = 70
            os._exit(code)
        os.close(write_fd)
        watch = _Watch(pid, read_fd, baseline, zygote.memory_limit)
        try:
            while skipped + len(outcomes) < len(items):
                item = items[skipped + len(outcomes)]
                line = watch.next_line(item.timeout)
                while isinstance(line, bytes) and line.startswith(b'{"op": "log"'):
                    zygote.send(**json.loads(line))  # a log line of the child: passed on, the item still runs
                    line = watch.next_line(item.timeout)
                if isinstance(line, bytes) and line.startswith(b'{"op": "restored"'):
                    skipped = json.loads(line)["blocks"]
                    zygote.send(op="restored", blocks=skipped)  # the runner starts its outcomes there
                    continue
                if isinstance(line, bytes):
                    add(from_json(outcome_type, json.loads(line)))
                    if outcomes[-1].status != "ok" and not independent:
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
                # not waited for: its exit (about 17 ms with the models mapped) overlaps the build's work
                _done.add(pid)
        if not independent and skipped + len(outcomes) < len(items):
            break
    return outcomes


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
        del self.buffer[: end + 1]
        return line

    def fault(self, kind: str, timeout: float) -> str:
        if kind == "memory":
            return (
                f"ran past its memory limit of {self.limit_gb:g} GB (its process had grown by "
                f"{self.grown / GB:.2f} GB when it was stopped)"
            )
        return f"stopped after its time limit of {timeout:g} s"


def _reap() -> None:
    """Collect the children killed since the last job (no zombies pile up; never blocks)."""
    for pid in list(_done):
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # another lane's thread reaped it
            finished = pid
        if finished:
            _done.discard(pid)


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
    die_with_parent()  # not Linux: the closed pipe still lets the build see the worker's death


def die_with_parent() -> None:
    """In a forked child: ask the kernel to kill this process when its parent (the worker) dies; Linux only."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except Exception:  # prctl is Linux-only
        pass


def _death(pid: int) -> str:
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        hint = " (killed: out of memory?)" if name == "SIGKILL" else ""
        return f"the process running it died from {name}{hint}"
    return f"the process running it exited with code {os.WEXITSTATUS(status)} before finishing"
