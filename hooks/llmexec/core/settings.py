"""The `extra.llm_exec` section of mkdocs.yml: its schema, validated without any renderer, and the Settings value."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, with_fix
from ..vocabulary import BATCH_SIZE, MODES, Mode, max_new_tokens_problem, seconds_problem
from .model_settings import model_specs, role_options
from .models import ModelSpec, model_cache_root
from .modes import Policy
from .schema import BOOLEAN, INTEGER, STRING, Schema, choice, kind, positive, validate

SECTION = "extra.llm_exec"
MODE_ENV = "LLM_EXEC_MODE"
REPORT_ENV = "LLM_EXEC_REPORT"
SINCE_ENV = "LLM_EXEC_SINCE"  # verify: re-execute only the blocks whose lockfile entries changed since this git ref
PREVIEW_EXECUTE_ENV = "LLM_EXEC_PREVIEW_EXECUTE"  # preview: "1" executes blocks with no entry (marked, never stored)
_TOP: Schema = {
    "enabled": (True, BOOLEAN),
    "mode": ("auto", choice(*MODES)),
    "lockfile": ("llm-exec.lock", STRING),
    "models": ({}, kind(dict, name="a mapping of roles")),
    "cache_dir": (".cache/llm-exec", STRING),
    "model_cache_dir": ("", STRING),
    "timeout": (120, seconds_problem),
    "max_new_tokens": (48, max_new_tokens_problem),
    "threads": (2, lambda v: INTEGER(v) or ("" if v >= 1 else f"must be at least 1, got {v}")),
    "batch_size": (
        32,  # 32 against 16 on the 50-page benchmark's prompts, quiet machine: 0.74x the wall time, texts identical
        lambda v: (
            INTEGER(v)
            or (
                ""
                if BATCH_SIZE[0] <= v <= BATCH_SIZE[1]
                else f"must be between {BATCH_SIZE[0]} and {BATCH_SIZE[1]}, got {v}"
            )
        ),
    ),
    "memory_limit": (4, positive("number of GB")),
    "notebooks_elsewhere": ("fail", choice("fail", "note")),  # a renderer without mkdocs-jupyter (Zensical)
    "serve_background": (True, BOOLEAN),  # `mkdocs serve`: an edited page at once, its answers when they are ready
}


@dataclass(frozen=True)
class Settings:
    """The validated settings, with paths resolved against mkdocs.yml's folder."""

    enabled: bool
    mode: Mode
    lockfile: Path
    report: Path  # where verify and preview builds write the drift report
    models: dict[str, ModelSpec]
    cache_dir: Path
    model_cache_dir: Path
    timeout: float
    max_new_tokens: int
    threads: int
    batch_size: int  # prompts per generation batch; 1 turns batching off
    memory_limit: float = 4.0  # GB a block's process may grow by before it is stopped
    since: str = ""  # verify mode: a git ref; only lockfile entries added or changed since it are re-executed
    preview_execute: bool = False  # preview mode: execute blocks that have no entry, for this preview only
    notebooks_elsewhere: str = "fail"  # where notebooks cannot be rendered (Zensical): fail, or note it at each link
    serve_background: bool = True  # `mkdocs serve`: missing generations run in the background (resolve/deferred.py)
    project_dir: Path = Path(".")  # the folder of mkdocs.yml: where snippets run, so relative paths mean the same

    @property
    def states_dir(self) -> Path:
        """Checkpoints of page state after each block (pickles: this folder must stay trusted)."""
        return self.cache_dir / "states"

    @property
    def policy(self) -> Policy:
        """What this build's mode lets it do (core/modes.py: the one place that reads the mode)."""
        return Policy(self.mode, self.preview_execute)

    def worker_fingerprint(self) -> str:
        """What a running worker's loaded models depend on; when it is unchanged, `serve` keeps the worker and its
        models (the project folder, limits and batch size are sent with each build's configuration)."""
        models = {role: spec.to_json() for role, spec in sorted(self.models.items())}
        return json.dumps([models, str(self.model_cache_dir), self.threads], sort_keys=True)


_MODES: dict[str, Mode] = {m: m for m in MODES}  # a checked mode name as its Literal


def load_settings(
    extra: Mapping[str, Any], config_dir: Path, watched: tuple[Path, ...] = (), environ: dict[str, str] | None = None
) -> Settings:
    """Validate `extra.llm_exec` and the LLM_EXEC_* variables; every problem, unknown keys included, is reported at
    once as one ConfigError."""
    env = os.environ if environ is None else environ
    problems: list[str] = []
    options = validate(extra.get("llm_exec") or {}, _TOP, SECTION, problems)
    raw_models = options["models"] if isinstance(options["models"], dict) else {}
    models_raw = role_options(raw_models, f"{SECTION}.models", problems)
    env_mode = env.get(MODE_ENV, "")
    if env_mode and env_mode not in MODES:
        problems.append(
            f"${MODE_ENV}={env_mode!r} is not an execution mode (use one of {', '.join(MODES)}, "
            f"or unset it to use {SECTION}.mode)"
        )
    mode = env_mode or options["mode"]
    if env.get(SINCE_ENV) and mode != "verify":
        problems.append(
            f"${SINCE_ENV} is set, but the mode is {mode}: only verify re-executes the entries changed "
            f"since a git ref (run: make verify SINCE=REF, or unset {SINCE_ENV})"
        )
    lockfile = (config_dir / options["lockfile"]).resolve()
    problems += [
        f"{SECTION}.lockfile: {lockfile} is inside {w}, which `mkdocs serve` watches (writing it would "
        "rebuild forever); put it next to mkdocs.yml"
        for w in watched
        if lockfile.is_relative_to(w.resolve())
    ]
    models = model_specs(models_raw, raw_models, config_dir, f"{SECTION}.models", problems)
    if problems:
        raise ConfigError(
            with_fix(
                "invalid configuration in mkdocs.yml:\n    " + "\n    ".join(problems),
                "fix the keys above; the allowed keys are listed in README, 'Configuration'",
            )
        )
    return Settings(
        enabled=options["enabled"],
        mode=_MODES[mode],
        lockfile=lockfile,
        report=Path(env.get(REPORT_ENV) or config_dir / options["cache_dir"] / "drift-report.md").resolve(),
        models=models,
        cache_dir=(config_dir / options["cache_dir"]).resolve(),
        model_cache_dir=model_cache_root(options["model_cache_dir"] and str(config_dir / options["model_cache_dir"])),
        timeout=float(options["timeout"]),
        max_new_tokens=options["max_new_tokens"],
        threads=options["threads"],
        batch_size=options["batch_size"],
        memory_limit=float(options["memory_limit"]),
        since=env.get(SINCE_ENV, ""),
        preview_execute=env.get(PREVIEW_EXECUTE_ENV, "") == "1",
        notebooks_elsewhere=options["notebooks_elsewhere"],
        serve_background=options["serve_background"],
        project_dir=config_dir.resolve(),
    )
