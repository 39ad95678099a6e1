"""The `extra.llm_exec` section of mkdocs.yml: its schema, validated without any renderer, and the Settings value."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, with_fix
from ..vocabulary import BATCH_SIZE, MODES, REQUIRED_ROLES, Mode, max_new_tokens_problem, seconds_problem
from .models import PRESETS, ModelSpec, model_cache_root
from .modes import Policy
from .preferences import PreferenceRecipe, read_pairs
from .recipes import TEMPLATES as TURN_TEMPLATES
from .recipes import Recipe, read_conversations

SECTION = "extra.llm_exec"
MODE_ENV = "LLM_EXEC_MODE"
REPORT_ENV = "LLM_EXEC_REPORT"
SINCE_ENV = "LLM_EXEC_SINCE"  # verify: re-execute only the blocks whose lockfile entries changed since this git ref
PREVIEW_EXECUTE_ENV = "LLM_EXEC_PREVIEW_EXECUTE"  # preview: "1" executes blocks with no entry (marked, never stored)
DEFAULT_PRESETS = {"base": "gemma-3-270m", "instruct": "smollm2-135m-instruct"}
Check = Callable[[Any], str]  # '' when the value is fine, else what is wrong with it


def _kind(*types: type, name: str) -> Check:
    return lambda v: "" if isinstance(v, types) and not (isinstance(v, bool) and bool not in types) else \
        f"expected {name}, got {type(v).__name__} {v!r}"


def _choice(*choices: str) -> Check:
    shown = ", ".join(c for c in choices if c)
    return lambda v: "" if v in choices else f"expected one of {shown}, got {v!r}"


def _positive(name: str) -> Check:
    number = _kind(int, float, name=name)
    return lambda v: number(v) or ("" if v > 0 else f"must be a positive {name}, got {v!r}")


STRING, NUMBER, INTEGER, BOOLEAN = _kind(str, name="text"), _kind(int, float, name="a number"), \
    _kind(int, name="a whole number"), _kind(bool, name="true or false")
# key: (default, check); a default of None means required
_TOP: dict[str, tuple[Any, Check]] = {
    "enabled": (True, BOOLEAN), "mode": ("auto", _choice(*MODES)), "lockfile": ("llm-exec.lock", STRING),
    "models": ({}, _kind(dict, name="a mapping of roles")), "cache_dir": (".cache/llm-exec", STRING),
    "model_cache_dir": ("", STRING), "timeout": (120, seconds_problem), "max_new_tokens": (48, max_new_tokens_problem),
    "threads": (2, lambda v: INTEGER(v) or ("" if v >= 1 else f"must be at least 1, got {v}")),
    "batch_size": (16, lambda v: INTEGER(v) or ("" if BATCH_SIZE[0] <= v <= BATCH_SIZE[1]
                                                 else f"must be between {BATCH_SIZE[0]} and {BATCH_SIZE[1]}, got {v}")),
    "memory_limit": (4, _positive("number of GB")),
    "notebooks_elsewhere": ("fail", _choice("fail", "note")),  # a renderer without mkdocs-jupyter (Zensical)
    "serve_background": (True, BOOLEAN),  # `mkdocs serve`: an edited page at once, its answers when they are ready
}
_MODEL: dict[str, tuple[Any, Check]] = {
    "preset": ("", _choice("", *PRESETS)), "hub": ("", STRING), "revision": ("", STRING), "path": ("", STRING),
    "label": ("", STRING), "endpoint": ({}, _kind(dict, name="a mapping (url, model, engine...)")),
}
# A model served over the OpenAI-compatible API (vLLM, SGLang, llama.cpp's server): see README, "Running on a
# serving engine". `engine` pins the engine and its version (they key the outputs; the build checks the server).
_ENDPOINT: dict[str, tuple[Any, Check]] = {
    "url": (None, STRING), "model": (None, STRING), "engine": (None, STRING), "revision": ("", STRING),
    "api_key_env": ("", STRING), "chat": (False, BOOLEAN), "concurrency": (4, _positive("whole number")),
    "timeout": (120, seconds_problem), "retries": (3, lambda v: INTEGER(v) or ("" if v >= 0 else f"must be 0 or more, got {v}")),
}
_TUNED: dict[str, tuple[Any, Check]] = {"tune": (None, _kind(dict, name="a recipe")), "label": ("", STRING)}
_TUNE: dict[str, tuple[Any, Check]] = {
    "start": ("base", STRING), "conversations": (None, STRING), "steps": (40, _positive("whole number")),
    "learning_rate": (5e-5, _positive("number")), "batch_size": (8, _positive("whole number")),
    "seed": (0, INTEGER), "method": ("full", _choice("full", "layers")), "template": ("gemma", _choice(*TURN_TEMPLATES)),
    "max_tokens": (256, _positive("whole number")),
}
_PREFERRED: dict[str, tuple[Any, Check]] = {"prefer": (None, _kind(dict, name="a recipe")), "label": ("", STRING)}
_PREFER: dict[str, tuple[Any, Check]] = {
    "start": ("tuned", STRING), "pairs": (None, STRING), "beta": (0.1, _positive("number")),
    "steps": (24, _positive("whole number")), "learning_rate": (1e-5, _positive("number")),
    "batch_size": (8, _positive("whole number")), "seed": (0, INTEGER), "method": ("layers", _choice("full", "layers")),
    "max_tokens": (128, _positive("whole number")),
}
OPTIONAL_ROLES = ("tuned", "preferred")  # made during the build: by instruction tuning, then by preference tuning


def validate(raw: Any, schema: dict[str, tuple[Any, Check]], where: str, problems: list[str]) -> dict[str, Any]:
    """The values with defaults filled in; every unknown key, missing key and bad value goes to `problems`."""
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping, got {type(raw).__name__}")
        return {key: default for key, (default, _) in schema.items()}
    values = {}
    for key in sorted(set(raw) - set(schema)):
        problems.append(f"{where}.{key}: unknown key (the keys here are: {', '.join(schema)})")
    for key, (default, check) in schema.items():
        if key not in raw or raw[key] is None:
            if default is None:
                problems.append(f"{where}.{key}: required, and missing")
            values[key] = default
        elif problem := check(raw[key]):
            problems.append(f"{where}.{key}: {problem}")
            values[key] = default
        else:
            values[key] = raw[key]
    return values


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


def load_settings(extra: Mapping[str, Any], config_dir: Path, watched: tuple[Path, ...] = (),
                  environ: dict[str, str] | None = None) -> Settings:
    """Validate `extra.llm_exec` and the LLM_EXEC_* variables; every problem, unknown keys included, is reported at
    once as one ConfigError."""
    env = os.environ if environ is None else environ
    problems: list[str] = []
    options = validate(extra.get("llm_exec") or {}, _TOP, SECTION, problems)
    raw_models = options["models"] if isinstance(options["models"], dict) else {}
    for role in sorted(set(raw_models) - {*REQUIRED_ROLES, *OPTIONAL_ROLES}):
        problems.append(f"{SECTION}.models.{role}: unknown role (the roles are: "
                        f"{', '.join((*REQUIRED_ROLES, *OPTIONAL_ROLES))})")
    models_raw = {role: validate(raw_models.get(role) or {}, _MODEL, f"{SECTION}.models.{role}", problems)
                  for role in REQUIRED_ROLES}
    problems += [p for role, m in models_raw.items() for p in _source_problems(role, m)]
    env_mode = env.get(MODE_ENV, "")
    if env_mode and env_mode not in MODES:
        problems.append(f"${MODE_ENV}={env_mode!r} is not an execution mode (use one of {', '.join(MODES)}, "
                        f"or unset it to use {SECTION}.mode)")
    mode = env_mode or options["mode"]
    if env.get(SINCE_ENV) and mode != "verify":
        problems.append(f"${SINCE_ENV} is set, but the mode is {mode}: only verify re-executes the entries changed "
                        f"since a git ref (run: make verify SINCE=REF, or unset {SINCE_ENV})")
    lockfile = (config_dir / options["lockfile"]).resolve()
    problems += [f"{SECTION}.lockfile: {lockfile} is inside {w}, which `mkdocs serve` watches (writing it would "
                 "rebuild forever); put it next to mkdocs.yml" for w in watched if lockfile.is_relative_to(w.resolve())]
    models = {role: _model_spec(role, m, config_dir) for role, m in models_raw.items()}
    if raw_models.get("tuned"):
        tuned = _tuned_spec(raw_models["tuned"], models, config_dir, problems)
        if tuned:
            models["tuned"] = tuned
    if raw_models.get("preferred"):
        preferred = _preferred_spec(raw_models["preferred"], models, config_dir, problems)
        if preferred:
            models["preferred"] = preferred
    if problems:
        raise ConfigError(with_fix("invalid configuration in mkdocs.yml:\n    " + "\n    ".join(problems),
                                   "fix the keys above; the allowed keys are listed in README, 'Configuration'"))
    return Settings(
        enabled=options["enabled"], mode=_MODES[mode], lockfile=lockfile,
        report=Path(env.get(REPORT_ENV) or config_dir / options["cache_dir"] / "drift-report.md").resolve(),
        models=models, cache_dir=(config_dir / options["cache_dir"]).resolve(),
        model_cache_dir=model_cache_root(options["model_cache_dir"] and str(config_dir / options["model_cache_dir"])),
        timeout=float(options["timeout"]), max_new_tokens=options["max_new_tokens"], threads=options["threads"],
        batch_size=options["batch_size"], memory_limit=float(options["memory_limit"]), since=env.get(SINCE_ENV, ""),
        preview_execute=env.get(PREVIEW_EXECUTE_ENV, "") == "1", notebooks_elsewhere=options["notebooks_elsewhere"],
        serve_background=options["serve_background"], project_dir=config_dir.resolve())


def _source_problems(role: str, model: dict[str, Any]) -> list[str]:
    where, problems = f"{SECTION}.models.{role}", []
    given = [k for k in ("preset", "hub", "path", "endpoint") if model[k]]
    if len(given) > 1:
        problems.append(f"{where}: give exactly one of preset, hub, path, endpoint (got {', '.join(given)})")
    if model["endpoint"]:
        options = validate(model["endpoint"], _ENDPOINT, f"{where}.endpoint", problems)
        if options["url"] and not re.match(r"^https?://[^/]+", options["url"]):
            problems.append(f"{where}.endpoint.url: expected http(s)://host:port/v1, got {options['url']!r}")
        if options["api_key_env"] and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", options["api_key_env"]):
            problems.append(f"{where}.endpoint.api_key_env: the NAME of an environment variable holding the key "
                            f"(never the key itself in mkdocs.yml), got {options['api_key_env'][:4]!r}…")
    if model["hub"] and not re.fullmatch(r"[0-9a-f]{40}", model["revision"] or ""):
        problems.append(f"{where}.revision: a hub model needs a pinned 40-hex commit id, "
                        f"got {model['revision']!r} (find it on the model page, 'Files and versions')")
    if model["revision"] and not model["hub"]:
        problems.append(f"{where}.revision: only meaningful together with `hub:`")
    return problems


def _model_spec(role: str, model: dict[str, Any], config_dir: Path) -> ModelSpec:
    if model["endpoint"]:
        options = validate(model["endpoint"], _ENDPOINT, "", [])
        detail = {k: options[k] for k in ("url", "engine", "api_key_env", "chat", "concurrency", "timeout", "retries")}
        return ModelSpec(role, "endpoint", options["model"] or "", options["revision"], model["label"],
                         endpoint=json.dumps(detail, sort_keys=True))
    if model["hub"]:
        return ModelSpec(role, "hub", model["hub"], model["revision"], model["label"])
    if model["path"]:
        return ModelSpec(role, "path", str((config_dir / model["path"]).resolve()), "", model["label"])
    return ModelSpec(role, "preset", model["preset"] or DEFAULT_PRESETS[role], "", model["label"])


def _tuned_spec(raw: Any, models: dict[str, ModelSpec], config_dir: Path, problems: list[str]) -> ModelSpec | None:
    """The tuned role from its recipe, checked now: a broken data file stops the build naming file and line."""
    where = f"{SECTION}.models.tuned"
    tuned = validate(raw, _TUNED, where, problems)
    tune = validate(tuned["tune"] or {}, _TUNE, f"{where}.tune", problems)
    if tune["start"] not in models:
        problems.append(f"{where}.tune.start: {tune['start']!r} is not a configured model "
                        f"(start from one of: {', '.join(models)})")
    if problems:
        return None
    recipe = Recipe(tune["start"], tune["conversations"], tune["steps"], float(tune["learning_rate"]),
                    tune["batch_size"], tune["seed"], tune["method"], tune["template"], tune["max_tokens"])
    data = (config_dir / tune["conversations"]).resolve()
    read_conversations(data)
    detail = {"recipe": recipe.to_json(), "data_path": str(data), "start": models[tune["start"]].to_json()}
    return ModelSpec("tuned", "tuned", "tuned", "", tuned["label"], json.dumps(detail, sort_keys=True))


def _preferred_spec(raw: Any, models: dict[str, ModelSpec], config_dir: Path, problems: list[str]) -> ModelSpec | None:
    """The preferred role: DPO from a tuned role, checked now (a broken pairs file names file and line)."""
    where = f"{SECTION}.models.preferred"
    preferred = validate(raw, _PREFERRED, where, problems)
    prefer = validate(preferred["prefer"] or {}, _PREFER, f"{where}.prefer", problems)
    start = models.get(prefer["start"])
    if start is None or start.kind != "tuned" or start.preference:
        tuned = [r for r, s in models.items() if s.kind == "tuned" and not s.preference]
        problems.append(f"{where}.prefer.start: {prefer['start']!r} is not an instruction-tuned model (DPO starts "
                        f"from one, and keeps it as its reference; configured: {', '.join(tuned) or 'none'})")
    if problems:
        return None
    assert start is not None
    recipe = PreferenceRecipe(prefer["start"], prefer["pairs"], float(prefer["beta"]), prefer["steps"],
                              float(prefer["learning_rate"]), prefer["batch_size"], prefer["seed"], prefer["method"],
                              start.tune_parts()[0].template, prefer["max_tokens"])
    data = (config_dir / prefer["pairs"]).resolve()
    read_pairs(data, prefer["pairs"])
    detail = {"objective": "dpo", "recipe": recipe.to_json(), "data_path": str(data), "start": start.to_json()}
    return ModelSpec("preferred", "tuned", "preferred", "", preferred["label"], json.dumps(detail, sort_keys=True))
