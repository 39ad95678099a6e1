"""Worker side: a tuned model's folder in the model cache, trained once (lock-protected) in a forked child."""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import io
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from ..core.models import ModelSpec
from ..core.preferences import read_pairs
from ..core.recipes import read_conversations
from ..errors import LlmExecError, NotTrainedHere, WorkerError, with_fix
from .supervise import die_with_parent
from .tune import MESSAGE_MARK, PROGRESS_MARK


def tuned_path(spec: ModelSpec, model_cache: Path) -> Path:
    """Where the tuned weights live: named by the recipe, the data, the starting model and the libraries that
    train it, so upgrading torch or transformers trains again (worker side, where they are installed)."""
    return (
        model_cache
        / f"tuned-{spec.role}-{hashlib.sha256(spec.tune_identity(with_libraries=True).encode()).hexdigest()[:24]}"
    )


def tuned_folder(
    spec: ModelSpec,
    model_cache: Path,
    log: Callable[[str], None],
    threads: int,
    start_folder: Callable[[ModelSpec], Path],
    train: bool = True,
) -> Path:
    """The tuned model, trained now if this recipe was never trained on this machine; a second build waits for
    the first one's training and then reuses it. Progress lines (step, loss, time left) go to `log`. With
    train=False (preview builds) a missing model is NotTrainedHere, never trained."""
    target = tuned_path(spec, model_cache)
    if (target / "config.json").is_file():
        return target
    if not train:
        raise NotTrainedHere(
            with_fix(
                f"the tuned model '{spec.role}' is not trained on this machine, and a preview never trains one (its "
                f"weights would be {target})",
                "its outputs come from the lockfile: run `make lock` on a trusted machine "
                "and commit llm-exec.lock/ (or build once in auto mode here: that trains it, and later previews run it)",
            )
        )
    recipe, data, start = spec.tune_parts()
    # a broken data file is named with its line before anything is loaded
    read_pairs(data, recipe.data) if spec.preference else read_conversations(data)
    module, stage = (
        ("llmexec.worker.prefer", "preference-tuning (DPO)") if spec.preference else ("llmexec.worker.tune", "tuning")
    )
    source = start_folder(start)
    model_cache.mkdir(parents=True, exist_ok=True)
    with open(model_cache / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "config.json").is_file():
            return target
        log(f"{stage} model '{spec.role}' once: {recipe.steps} steps on {data.name}, from {start.artifact}")
        returncode, errors = _train_forked(module, spec, source, target, threads, log)
        sys.stderr.write(errors)  # kept in the worker log
        if returncode != 0:
            reason = errors.partition(MESSAGE_MARK)[2].strip()
            raise WorkerError(
                reason
                or with_fix(
                    f"{stage} model '{spec.role}' failed with exit code {returncode}: {errors.strip()[-600:]}",
                    "see the worker log for the cause",
                )
            )
    return target


def _train_forked(
    module: str, spec: ModelSpec, source: Path, target: Path, threads: int, log: Callable[[str], None]
) -> tuple[int, str]:
    """The trainer's `train` in a forked child of this process (the zygote, which has imported torch and
    transformers but never runs a model: a child's OpenMP starts fresh): a new interpreter spent 2.5-4 s of CPU
    importing them again. Like a subprocess, the child holds only its own pipes (progress lines on stdout, passed
    to `log`; stderr into a file, returned with the exit code) and dies with its parent."""
    trainer = importlib.import_module(module)
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - read back below; a pipe could fill while progress is read
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(write_fd, 1)
            os.dup2(errors.fileno(), 2)
            os.closerange(3, _max_fd())  # the worker's protocol pipe and every other inherited file, as Popen does
            sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), write_through=True)
            sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), write_through=True)
            die_with_parent()
            trainer.train(spec, source, target, threads)
        except LlmExecError as exc:  # the message (file, line, fix) is what the build reports, not a traceback
            print(f"{MESSAGE_MARK}{exc}", file=sys.stderr, flush=True)
            code = 2
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, encoding="utf-8", errors="replace") as progress:
        for line in progress:
            if line.startswith(PROGRESS_MARK):
                log(line[len(PROGRESS_MARK) :].rstrip())
    _, status = os.waitpid(pid, 0)
    with errors:
        errors.seek(0)
        text = errors.read().decode("utf-8", errors="replace")
    return (os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)), text


def _max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        return 4096


def training_record(folder: Path) -> dict:
    """What training.json says about a tuned folder (losses, weights sha256...); {} for other models."""
    try:
        return json.loads((folder / "training.json").read_text())
    except (OSError, ValueError):
        return {}
