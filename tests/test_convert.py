"""The one-time GGUF -> safetensors conversion of a preset, run for real on the small SmolLM2 preset (~100 MB GGUF)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmexec.core.models import PRESETS, ModelSpec, converted_path, file_sha256, model_cache_root, preset_chunk_paths

pytestmark = pytest.mark.real_models

PRESET = "smollm2-135m-instruct"


def test_converting_the_smollm2_preset_gives_a_folder_that_generates_like_the_cached_copy(tmp_path):
    from llmexec.worker.models import load_model

    spec = ModelSpec("instruct", "preset", PRESET)
    cached = converted_path(spec, model_cache_root(""))
    assert (cached / "config.json").is_file(), f"no converted copy in {cached}: run `make models` first"
    target = tmp_path / "models" / cached.name
    target.parent.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "llmexec.worker.convert", PRESET, str(target)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    names = {p.name for p in target.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "llm-exec-source.json",
    } <= names
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # the scratch folder is gone
    source = json.loads((target / "llm-exec-source.json").read_text())
    (gguf,) = preset_chunk_paths(spec)
    assert source["gguf_sha256"] == PRESETS[PRESET].sha256 == file_sha256(gguf)  # the pin is the installed file's hash
    assert source["preset"] == PRESET and source["gguf"] == gguf.name == PRESETS[PRESET].gguf_name
    assert json.loads((target / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    assert "quantization_config" not in json.loads((target / "config.json").read_text())  # a plain fp32 folder

    prompt = "Translate to French: Good morning, my friend."
    texts = []
    for folder in (target, cached):
        model = load_model(ModelSpec("instruct", "path", str(folder)), Path(), lambda _: None)
        assert model.has_chat_template
        texts.append((model.format_prompt(prompt), model.generate(prompt, max_new_tokens=24).text))
        del model
    assert texts[0][1].strip(), texts
    assert texts[0] == texts[1]


@pytest.mark.parametrize("preset", ["smollm2-135m-instruct", "gemma-3-270m"])
def test_the_direct_conversion_gives_the_same_bytes_and_tensors_as_transformers_own_loader(tmp_path, preset):
    """The fast path (meta-device model, one GGUF parse) against from_pretrained(gguf_file=...): every file byte for
    byte (so the converted copy's identity, every output and the lockfile are unchanged) and every tensor equal."""
    import torch
    from safetensors.torch import load_file

    folders = {}
    for method in ("transformers", "direct"):
        folders[method] = tmp_path / method
        done = subprocess.run(
            [sys.executable, "-m", "llmexec.worker.convert", preset, str(folders[method]), "base", method],
            capture_output=True,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            timeout=900,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    names = sorted(p.name for p in folders["transformers"].iterdir())
    assert names == sorted(p.name for p in folders["direct"].iterdir()) and "model.safetensors" in names
    reference, direct = (load_file(folders[m] / "model.safetensors") for m in ("transformers", "direct"))
    assert sorted(reference) == sorted(direct)
    for name, tensor in reference.items():
        assert direct[name].dtype == tensor.dtype == torch.float32 and torch.equal(direct[name], tensor), name
    for name in names:
        assert file_sha256(folders["direct"] / name) == file_sha256(folders["transformers"] / name), name
