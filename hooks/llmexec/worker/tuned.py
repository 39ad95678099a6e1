"""Worker side: a tuned model's folder in the model cache, trained once (lock-protected) by `python -m llmexec.tune`."""

from __future__ import annotations

import fcntl
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..core.launch import child_env
from ..core.models import ModelSpec
from ..core.preferences import read_pairs
from ..core.recipes import read_conversations
from ..errors import NotTrainedHere, WorkerError, with_fix
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
        process = subprocess.Popen(
            [sys.executable, "-m", module, json.dumps(spec.to_json()), str(source), str(target), str(threads)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        assert process.stdout is not None and process.stderr is not None
        for line in process.stdout:
            if line.startswith(PROGRESS_MARK):
                log(line[len(PROGRESS_MARK) :].rstrip())
        errors = process.stderr.read()
        sys.stderr.write(errors)  # kept in the worker log
        if process.wait() != 0:
            reason = errors.partition(MESSAGE_MARK)[2].strip()
            raise WorkerError(
                reason
                or with_fix(
                    f"{stage} model '{spec.role}' failed with exit code {process.returncode}: {errors.strip()[-600:]}",
                    "see the worker log for the cause",
                )
            )
    return target


def training_record(folder: Path) -> dict:
    """What training.json says about a tuned folder (losses, weights sha256...); {} for other models."""
    try:
        return json.loads((folder / "training.json").read_text())
    except (OSError, ValueError):
        return {}
