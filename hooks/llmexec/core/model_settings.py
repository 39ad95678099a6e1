"""The `models` section of extra.llm_exec: each role's keys checked, then made a ModelSpec (tuned roles' data read)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..vocabulary import REQUIRED_ROLES, TURN_FORMATS, seconds_problem
from .models import PRESETS, ModelSpec
from .schema import BOOLEAN, INTEGER, STRING, Schema, choice, kind, positive, validate

DEFAULT_PRESETS = {"base": "gemma-3-270m", "instruct": "smollm2-135m-instruct"}
OPTIONAL_ROLES = ("tuned", "preferred")  # made during the build: by instruction tuning, then by preference tuning
_MODEL: Schema = {
    "preset": ("", choice("", *PRESETS)),
    "hub": ("", STRING),
    "revision": ("", STRING),
    "path": ("", STRING),
    "label": ("", STRING),
    "endpoint": ({}, kind(dict, name="a mapping (url, model, engine...)")),
}
# A model served over the OpenAI-compatible API (vLLM, SGLang, llama.cpp's server): see README, "Running on a
# serving engine". `engine` pins the engine and its version (they key the outputs; the build checks the server).
_ENDPOINT: Schema = {
    "url": (None, STRING),
    "model": (None, STRING),
    "engine": (None, STRING),
    "revision": ("", STRING),
    "api_key_env": ("", STRING),
    "chat": (False, BOOLEAN),
    "concurrency": (4, positive("whole number")),
    "timeout": (120, seconds_problem),
    "retries": (3, lambda v: INTEGER(v) or ("" if v >= 0 else f"must be 0 or more, got {v}")),
}
_TUNED: Schema = {"tune": (None, kind(dict, name="a recipe")), "label": ("", STRING)}
_TUNE: Schema = {
    "start": ("base", STRING),
    "conversations": (None, STRING),
    "steps": (40, positive("whole number")),
    "learning_rate": (5e-5, positive("number")),
    "batch_size": (8, positive("whole number")),
    "seed": (0, INTEGER),
    "method": ("full", choice("full", "layers")),
    "template": ("gemma", choice(*TURN_FORMATS)),
    "max_tokens": (256, positive("whole number")),
}
_PREFERRED: Schema = {"prefer": (None, kind(dict, name="a recipe")), "label": ("", STRING)}
_PREFER: Schema = {
    "start": ("tuned", STRING),
    "pairs": (None, STRING),
    "beta": (0.1, positive("number")),
    "steps": (24, positive("whole number")),
    "learning_rate": (1e-5, positive("number")),
    "batch_size": (8, positive("whole number")),
    "seed": (0, INTEGER),
    "method": ("layers", choice("full", "layers")),
    "max_tokens": (128, positive("whole number")),
}


def role_options(raw_models: dict[str, Any], where: str, problems: list[str]) -> dict[str, dict[str, Any]]:
    """The required roles' keys, checked; unknown roles, bad values and conflicting sources go to `problems`. `where`
    names the section in messages (extra.llm_exec.models)."""
    for role in sorted(set(raw_models) - {*REQUIRED_ROLES, *OPTIONAL_ROLES}):
        problems.append(
            f"{where}.{role}: unknown role (the roles are: {', '.join((*REQUIRED_ROLES, *OPTIONAL_ROLES))})"
        )
    options = {
        role: validate(raw_models.get(role) or {}, _MODEL, f"{where}.{role}", problems) for role in REQUIRED_ROLES
    }
    problems += [p for role, m in options.items() for p in _source_problems(f"{where}.{role}", m)]
    return options


def model_specs(
    options: dict[str, dict[str, Any]], raw_models: dict[str, Any], config_dir: Path, where: str, problems: list[str]
) -> dict[str, ModelSpec]:
    """Every role as a ModelSpec: the required ones from their checked keys, the tuned ones from their recipes (made
    only while `problems` is empty, so their data files are read only from a configuration without other faults)."""
    models = {role: _model_spec(role, m, config_dir) for role, m in options.items()}
    if raw_models.get("tuned"):
        tuned = _tuned_spec(raw_models["tuned"], models, config_dir, f"{where}.tuned", problems)
        if tuned:
            models["tuned"] = tuned
    if raw_models.get("preferred"):
        preferred = _preferred_spec(raw_models["preferred"], models, config_dir, f"{where}.preferred", problems)
        if preferred:
            models["preferred"] = preferred
    return models


def _source_problems(where: str, model: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    given = [k for k in ("preset", "hub", "path", "endpoint") if model[k]]
    if len(given) > 1:
        problems.append(f"{where}: give exactly one of preset, hub, path, endpoint (got {', '.join(given)})")
    if model["endpoint"]:
        options = validate(model["endpoint"], _ENDPOINT, f"{where}.endpoint", problems)
        if options["url"] and not re.match(r"^https?://[^/]+", options["url"]):
            problems.append(f"{where}.endpoint.url: expected http(s)://host:port/v1, got {options['url']!r}")
        if options["api_key_env"] and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", options["api_key_env"]):
            problems.append(
                f"{where}.endpoint.api_key_env: the NAME of an environment variable holding the key "
                f"(never the key itself in mkdocs.yml), got {options['api_key_env'][:4]!r}…"
            )
    if model["hub"] and not re.fullmatch(r"[0-9a-f]{40}", model["revision"] or ""):
        problems.append(
            f"{where}.revision: a hub model needs a pinned 40-hex commit id, "
            f"got {model['revision']!r} (find it on the model page, 'Files and versions')"
        )
    if model["revision"] and not model["hub"]:
        problems.append(f"{where}.revision: only meaningful together with `hub:`")
    return problems


def _model_spec(role: str, model: dict[str, Any], config_dir: Path) -> ModelSpec:
    if model["endpoint"]:
        options = validate(model["endpoint"], _ENDPOINT, "", [])
        detail = {k: options[k] for k in ("url", "engine", "api_key_env", "chat", "concurrency", "timeout", "retries")}
        return ModelSpec(
            role,
            "endpoint",
            options["model"] or "",
            options["revision"],
            model["label"],
            endpoint=json.dumps(detail, sort_keys=True),
        )
    if model["hub"]:
        return ModelSpec(role, "hub", model["hub"], model["revision"], model["label"])
    if model["path"]:
        return ModelSpec(role, "path", str((config_dir / model["path"]).resolve()), "", model["label"])
    return ModelSpec(role, "preset", model["preset"] or DEFAULT_PRESETS[role], "", model["label"])


def _tuned_spec(
    raw: Any, models: dict[str, ModelSpec], config_dir: Path, where: str, problems: list[str]
) -> ModelSpec | None:
    """The tuned role from its recipe, checked now: a broken data file stops the build naming file and line."""
    tuned = validate(raw, _TUNED, where, problems)
    tune = validate(tuned["tune"] or {}, _TUNE, f"{where}.tune", problems)
    if tune["start"] not in models:
        problems.append(
            f"{where}.tune.start: {tune['start']!r} is not a configured model (start from one of: {', '.join(models)})"
        )
    if problems:
        return None
    from .recipes import Recipe, read_conversations  # only a site with a tuned model needs them

    recipe = Recipe(
        tune["start"],
        tune["conversations"],
        tune["steps"],
        float(tune["learning_rate"]),
        tune["batch_size"],
        tune["seed"],
        tune["method"],
        tune["template"],
        tune["max_tokens"],
    )
    data = (config_dir / tune["conversations"]).resolve()
    read_conversations(data)
    detail = {"recipe": recipe.to_json(), "data_path": str(data), "start": models[tune["start"]].to_json()}
    return ModelSpec("tuned", "tuned", "tuned", "", tuned["label"], json.dumps(detail, sort_keys=True))


def _preferred_spec(
    raw: Any, models: dict[str, ModelSpec], config_dir: Path, where: str, problems: list[str]
) -> ModelSpec | None:
    """The preferred role: DPO from a tuned role, checked now (a broken pairs file names file and line)."""
    preferred = validate(raw, _PREFERRED, where, problems)
    prefer = validate(preferred["prefer"] or {}, _PREFER, f"{where}.prefer", problems)
    start = models.get(prefer["start"])
    if start is None or start.kind != "tuned" or start.preference:
        tuned = [r for r, s in models.items() if s.kind == "tuned" and not s.preference]
        problems.append(
            f"{where}.prefer.start: {prefer['start']!r} is not an instruction-tuned model (DPO starts "
            f"from one, and keeps it as its reference; configured: {', '.join(tuned) or 'none'})"
        )
    if problems:
        return None
    assert start is not None
    from .preferences import PreferenceRecipe, read_pairs  # only a site with a preferred model needs them

    recipe = PreferenceRecipe(
        prefer["start"],
        prefer["pairs"],
        float(prefer["beta"]),
        prefer["steps"],
        float(prefer["learning_rate"]),
        prefer["batch_size"],
        prefer["seed"],
        prefer["method"],
        start.tune_parts()[0].template,
        prefer["max_tokens"],
    )
    data = (config_dir / prefer["pairs"]).resolve()
    read_pairs(data, prefer["pairs"])
    detail = {"objective": "dpo", "recipe": recipe.to_json(), "data_path": str(data), "start": start.to_json()}
    return ModelSpec("preferred", "tuned", "preferred", "", preferred["label"], json.dumps(detail, sort_keys=True))
