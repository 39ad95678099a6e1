"""The one-time GGUF -> safetensors conversion of a preset, run for real on the small SmolLM2 preset (~100 MB GGUF)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
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
    done = subprocess.run([sys.executable, "-m", "llmexec.worker.convert", PRESET, str(target)], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    names = {p.name for p in target.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "llm-exec-source.json"} <= names
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
