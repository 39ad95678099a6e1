"""Worker side, code jobs: a page's blocks (or a notebook's cells) run in order in one namespace, in a forked child."""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
import traceback
from typing import Any, BinaryIO

from ..core.files import checkpoint_path
from ..core.protocol import CodeOutcome, CodeRequest, dumps, to_json
from ..errors import NotTrainedHere
from ..vocabulary import Status
from . import checkpoints, display
from .host import Host

MAX_OUTPUT = 64 * 1024  # characters of a block's output kept; the rest is cut with a note


def run_code_child(zygote: Host, blocks: list[CodeRequest], report: BinaryIO, resume: int) -> None:
    """In the forked child: run a page's blocks in order in one namespace, one report line per block."""
    import torch

    from . import models as runtime
    from .models import ModelHandle

    torch.set_num_threads(zygote.threads)
    used: set[str] = set()
    shown: list[dict[str, str]] = []
    handles = {role: ModelHandle(role, zygote.model, used) for role in zygote.specs}
    runtime.HANDLES.update(handles)
    noted: dict[str, Any] = {}
    namespace: dict[str, Any] = {
        "__name__": "__main__",
        "models": handles,
        **handles,
        "display": lambda *values: shown.extend(display.mime_bundle(v) for v in values),
        "note": lambda **values: noted.update(display.notes(values)),
    }
    reserved = set(namespace)
    state = checkpoints.restore(checkpoint_path(zygote.states, blocks[resume - 1].key)) if resume else None
    capture = tempfile.TemporaryFile()  # noqa: SIM115 - stdout and stderr for the whole child; it ends with it
    os.dup2(capture.fileno(), 1)
    os.dup2(capture.fileno(), 2)
    stream = io.TextIOWrapper(
        os.fdopen(1, "wb", closefd=False), encoding="utf-8", errors="backslashreplace", write_through=True
    )
    sys.stdout = sys.stderr = stream
    if state is not None:  # the earlier blocks' outputs are cached; their state is all that is needed
        namespace.update(state)
        report.write(dumps({"op": "restored", "blocks": resume}))  # said once; their outcomes are the build's
        report.flush()
        blocks = blocks[resume:]
    for block in blocks:
        start = os.lseek(1, 0, os.SEEK_END)
        started = time.perf_counter()
        status: Status
        error, status = "", "ok"
        shown.clear()
        noted.clear()
        used.clear()  # the models this block touched, for its provenance caption
        try:
            display.run(
                block.code, block.filename, block.first_line, namespace, display_last=block.display_last, shown=shown
            )
        except NotTrainedHere as exc:  # a preview reached a tuned model it may not train: not run, not failed
            error, status = str(exc), "unexecuted"
        except BaseException as exc:  # SystemExit and KeyboardInterrupt are snippet failures too
            error, status = _snippet_traceback(exc), "error"
        stream.flush()
        output = _read_from(1, start)
        outcome = CodeOutcome(
            status=status,
            output=output,
            error=error,
            seconds=round(time.perf_counter() - started, 3),
            models_used=tuple(sorted(used)),
            rich=tuple(shown),
            notes=dict(noted),
        )
        if not error and block.key:
            checkpoints.save(namespace, reserved, checkpoint_path(zygote.states, block.key))
        report.write(dumps(to_json(outcome)))
        report.flush()
        if error:
            return


def _read_from(fd: int, start: int) -> str:
    size = os.lseek(fd, 0, os.SEEK_END) - start
    data = os.pread(fd, min(size, MAX_OUTPUT * 4), start).decode("utf-8", errors="backslashreplace")
    if len(data) > MAX_OUTPUT or size > MAX_OUTPUT * 4:
        data = data[:MAX_OUTPUT] + f"\n… output cut: {size} bytes in all, {MAX_OUTPUT} characters shown\n"
    return data


def _snippet_traceback(exc: BaseException) -> str:
    """The traceback without this package's frames: it starts at the snippet's own line, and an error raised by
    the snippet API (a model on a serving engine that cannot be reached...) ends with its message and fix."""
    te = traceback.TracebackException.from_exception(exc)
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    te.stack = traceback.StackSummary.from_list(
        [f for f in te.stack if not os.path.abspath(f.filename).startswith(package)]
    )
    return "".join(te.format()).rstrip("\n")
