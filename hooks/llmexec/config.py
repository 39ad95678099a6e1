"""The `extra.llm_exec` section of mkdocs.yml: schema, validation and the resolved settings value."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mkdocs.config import base
from mkdocs.config import config_options as c

from .errors import ConfigError, with_fix
from .models import PRESETS, ModelSpec, model_cache_root
from .recipes import TEMPLATES, Recipe, read_conversations
from .store import MODES, Mode

SECTION = "extra.llm_exec"
MODE_ENV = "LLM_EXEC_MODE"
REPORT_ENV = "LLM_EXEC_REPORT"
SINCE_ENV = "LLM_EXEC_SINCE"  # verify: re-execute only the blocks whose lockfile entries changed since this git ref
PREVIEW_EXECUTE_ENV = "LLM_EXEC_PREVIEW_EXECUTE"  # preview: "1" executes blocks with no entry (marked, never stored)
ROLES = ("base", "instruct")
DEFAULT_PRESETS = {"base": "gemma-3-270m", "instruct": "smollm2-135m-instruct"}


class _ModelOptions(base.Config):
    preset = c.Optional(c.Choice(tuple(PRESETS)))
    hub = c.Optional(c.Type(str))
    revision = c.Optional(c.Type(str))
    path = c.Optional(c.Type(str))
    label = c.Type(str, default="")


class _TuneOptions(base.Config):
    """A same-family instruct variant made during the build (README, 'A tuned model')."""

    start = c.Type(str, default="base")
    conversations = c.Type(str)  # the training data: JSON lines (a Config cannot have a key named `data`)
    steps = c.Type(int, default=40)
    learning_rate = c.Type((int, float), default=5e-5)
    batch_size = c.Type(int, default=8)
    seed = c.Type(int, default=0)
    method = c.Choice(("full", "layers"), default="full")
    template = c.Choice(tuple(TEMPLATES), default="gemma")
    max_tokens = c.Type(int, default=256)


class _TunedOptions(base.Config):
    tune = c.SubConfig(_TuneOptions)
    label = c.Type(str, default="")


class _ModelsOptions(base.Config):
    base = c.SubConfig(_ModelOptions)
    instruct = c.SubConfig(_ModelOptions)
    tuned = c.Type(dict, default={})  # optional: validated with _TunedOptions when given


class _Options(base.Config):
    enabled = c.Type(bool, default=True)
    mode = c.Choice(MODES, default="auto")
    lockfile = c.Type(str, default="llm-exec.lock")
    models = c.SubConfig(_ModelsOptions)
    cache_dir = c.Type(str, default=".cache/llm-exec")
    model_cache_dir = c.Type(str, default="")
    timeout = c.Type((int, float), default=120)
    max_new_tokens = c.Type(int, default=48)
    threads = c.Type(int, default=2)
    batch_size = c.Type(int, default=16)
    memory_limit = c.Type((int, float), default=4)


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
    memory_limit: float  # GB (10**9 bytes) a page's process may grow by before it is stopped
    since: str = ""  # verify mode: a git ref; only lockfile entries added or changed since it are re-executed
    preview_execute: bool = False  # preview mode: execute blocks that have no entry, for this preview only

    @property
    def states_dir(self) -> Path:
        """Checkpoints of page state after each block (pickles: this folder must stay trusted)."""
        return self.cache_dir / "states"

    def worker_fingerprint(self) -> str:
        """What a running worker depends on: a change means it must be restarted."""
        models = {role: spec.to_json() for role, spec in self.models.items()}
        return json.dumps([models, str(self.model_cache_dir), self.threads], sort_keys=True)


def load_settings(extra: dict[str, Any], config_dir: Path, watched: tuple[Path, ...] = (),
                  environ: dict[str, str] | None = None) -> Settings:
    """Validate `extra.llm_exec` (and $LLM_EXEC_MODE); every problem, unknown keys included, is one ConfigError."""
    raw = extra.get("llm_exec") or {}
    if not isinstance(raw, dict):
        raise ConfigError(with_fix(f"{SECTION} must be a mapping, got {type(raw).__name__}", "see README, 'Configuration'"))
    env = os.environ if environ is None else environ
    env_mode = env.get(MODE_ENV, "")
    if env_mode and env_mode not in MODES:
        raise ConfigError(with_fix(f"${MODE_ENV}={env_mode!r} is not an execution mode",
                                   f"use one of {', '.join(MODES)}, or unset {MODE_ENV} to use {SECTION}.mode"))
    options = _Options(config_file_path=str(config_dir / "mkdocs.yml"))
    options.load_dict(raw)
    failed, warnings = options.validate()
    problems = [f"{SECTION}.{key}: {err}" for key, err in failed]
    problems += [f"{SECTION}.{key}: {msg}" for key, msg in warnings]
    if not problems:
        problems += _check_values(options)
        lockfile = (config_dir / options.lockfile).resolve()
        problems += [f"{SECTION}.lockfile: {lockfile} is inside {w}, which `mkdocs serve` watches (writing it would "
                     "rebuild forever); put it next to mkdocs.yml" for w in watched if lockfile.is_relative_to(w.resolve())]
    if problems:
        raise ConfigError(with_fix("invalid configuration in mkdocs.yml:\n    " + "\n    ".join(problems),
                                   "fix the keys above; the allowed keys are listed in README, 'Configuration'"))
    if env.get(SINCE_ENV) and (env_mode or options.mode) != "verify":
        raise ConfigError(with_fix(f"${SINCE_ENV} is set, but the mode is {env_mode or options.mode}: only verify "
                                   "re-executes the entries changed since a git ref", f"run: make verify SINCE=REF, "
                                   f"or unset {SINCE_ENV}"))
    models = {role: _model_spec(role, options.models[role], config_dir) for role in ROLES}
    if options.models["tuned"]:
        models["tuned"] = _tuned_spec(options.models["tuned"], models, config_dir)
    return Settings(
        enabled=options.enabled,
        mode=env_mode or options.mode,  # type: ignore[arg-type]
        lockfile=(config_dir / options.lockfile).resolve(),
        report=Path(env.get(REPORT_ENV)
                    or config_dir / options.cache_dir / "drift-report.md").resolve(),
        models=models,
        cache_dir=(config_dir / options.cache_dir).resolve(),
        model_cache_dir=model_cache_root(options.model_cache_dir and str(config_dir / options.model_cache_dir)),
        timeout=float(options.timeout),
        max_new_tokens=options.max_new_tokens,
        threads=options.threads,
        batch_size=options.batch_size,
        memory_limit=float(options.memory_limit),
        since=env.get(SINCE_ENV, ""),
        preview_execute=env.get(PREVIEW_EXECUTE_ENV, "") == "1",
    )


def _check_values(options: _Options) -> list[str]:
    problems = []
    if options.timeout <= 0:
        problems.append(f"{SECTION}.timeout: must be a positive number of seconds, got {options.timeout}")
    if not 1 <= options.max_new_tokens <= 4096:
        problems.append(f"{SECTION}.max_new_tokens: must be between 1 and 4096, got {options.max_new_tokens}")
    if not 1 <= options.batch_size <= 64:
        problems.append(f"{SECTION}.batch_size: must be between 1 and 64, got {options.batch_size}")
    if options.memory_limit <= 0:
        problems.append(f"{SECTION}.memory_limit: must be a positive number of GB, got {options.memory_limit}")
    if options.threads < 1:
        problems.append(f"{SECTION}.threads: must be at least 1, got {options.threads}")
    for role in ROLES:
        model = options.models[role]
        given = [k for k in ("preset", "hub", "path") if model[k]]
        where = f"{SECTION}.models.{role}"
        if len(given) > 1:
            problems.append(f"{where}: give exactly one of preset, hub, path (got {', '.join(given)})")
        if model["hub"] and not re.fullmatch(r"[0-9a-f]{40}", model["revision"] or ""):
            problems.append(f"{where}.revision: a hub model needs a pinned 40-hex commit id, "
                            f"got {model['revision']!r} (find it on the model page, 'Files and versions')")
        if model["revision"] and not model["hub"]:
            problems.append(f"{where}.revision: only meaningful together with `hub:`")
    return problems


def _tuned_spec(raw: dict[str, Any], models: dict[str, ModelSpec], config_dir: Path) -> ModelSpec:
    """The tuned role: its recipe, checked now (a broken data file stops the build naming file and line)."""
    tuned = _TunedOptions(config_file_path=str(config_dir / "mkdocs.yml"))
    tuned.load_dict(raw)
    failed, warnings = tuned.validate()
    where = f"{SECTION}.models.tuned"
    if failed or warnings:
        raise ConfigError(with_fix("invalid configuration in mkdocs.yml:\n    " + "\n    ".join(
            f"{where}.{key}: {err}" for key, err in [*failed, *warnings]), "see README, 'A tuned model'"))
    tune = tuned["tune"]
    where += ".tune"
    if tune["start"] not in models:
        raise ConfigError(with_fix(f"{where}.start: {tune['start']!r} is not a configured model",
                                   f"start from one of: {', '.join(models)}"))
    bad = [f"{name} must be positive" for name in ("steps", "learning_rate", "batch_size", "max_tokens") if tune[name] <= 0]
    if bad:
        raise ConfigError(with_fix(f"{where}: {'; '.join(bad)}", "see README, 'A tuned model'"))
    recipe = Recipe(tune["start"], tune["conversations"], tune["steps"], float(tune["learning_rate"]), tune["batch_size"],
                    tune["seed"], tune["method"], tune["template"], tune["max_tokens"])
    data = (config_dir / tune["conversations"]).resolve()
    read_conversations(data)
    detail = {"recipe": recipe.to_json(), "data_path": str(data), "start": models[tune["start"]].to_json()}
    return ModelSpec("tuned", "tuned", "tuned", "", tuned["label"], json.dumps(detail, sort_keys=True))


def _model_spec(role: str, model: _ModelOptions, config_dir: Path) -> ModelSpec:
    if model["hub"]:
        return ModelSpec(role, "hub", model["hub"], model["revision"], model["label"])
    if model["path"]:
        return ModelSpec(role, "path", str((config_dir / model["path"]).resolve()), "", model["label"])
    return ModelSpec(role, "preset", model["preset"] or DEFAULT_PRESETS[role], "", model["label"])
