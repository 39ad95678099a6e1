"""Worker side: loading a configured model (converting presets once) and the API snippets call on it."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from .convert import MESSAGE_MARK
from .errors import ModelIntegrityError, ModelNotFound, WorkerError, with_fix
from .models import PRESETS, ModelSpec, converted_path, hub_snapshot, preset_chunk_paths


class ModelUnavailable(RuntimeError):
    """Raised inside a snippet that touches a model that could not be loaded."""


@dataclass(frozen=True)
class Generation:
    """What one model produced for one prompt. str() gives the generated text."""

    model: str
    artifact: str
    input_text: str
    input_tokens: int
    text: str
    finish_reason: Literal["eos", "length"]
    new_tokens: int
    seconds: float

    def __str__(self) -> str:
        return self.text


class LoadedModel:
    """A model and its tokenizer in fp32, with greedy helpers that show exactly what the model saw."""

    def __init__(self, spec: ModelSpec, tokenizer, model) -> None:
        self.spec, self.role, self.artifact = spec, spec.role, spec.artifact
        self.tokenizer, self.model = tokenizer, model
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))

    def __repr__(self) -> str:
        return f"<{self.role} model: {self.artifact}>"

    def format_prompt(self, prompt: str, *, template: str = "auto", system: str = "") -> str:
        """The text handed to the tokenizer: raw for base models, the chat template applied otherwise."""
        return self._format(prompt, template, system)[0]

    def _format(self, prompt: str, template: str, system: str) -> tuple[str, bool]:
        use_chat = template == "chat" or (template == "auto" and self.has_chat_template)
        if use_chat and not self.has_chat_template:
            raise ValueError(f"the {self.role} model ({self.artifact}) has no chat template; use template=raw")
        if not use_chat:
            if system:
                raise ValueError("system= needs a chat template; the prompt is given to this model as raw text")
            return prompt, False
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True), True

    def encode(self, text: str, *, chat: bool) -> list[int]:
        """Token ids; a chat-formatted text already holds its special tokens, raw text gets the model's BOS."""
        return self.tokenizer(text, add_special_tokens=not chat)["input_ids"]

    def generate(self, prompt: str, *, max_new_tokens: int = 48, template: str = "auto", system: str = "") -> Generation:
        """Greedy continuation of `prompt` (chat template applied where the model has one)."""
        return self.generate_batch([(prompt, template, system)], max_new_tokens)[0]

    def chat(self, message: str, *, system: str = "", max_new_tokens: int = 48) -> Generation:
        return self.generate(message, template="chat", system=system, max_new_tokens=max_new_tokens)

    def generate_batch(self, prompts: list[tuple[str, str, str]], max_new_tokens: int) -> list[Generation]:
        """Greedy generation for (prompt, template, system) triples in one batch, left-padded.
        In fp32 each row gets the same tokens it would get alone (the tests check it)."""
        started = time.perf_counter()
        encoded = []
        for prompt, template, system in prompts:
            text, chat = self._format(prompt, template, system)
            encoded.append(self.encode(text, chat=chat))
        eos = self._eos_ids()
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(eos or {0})
        width = max(len(ids) for ids in encoded)
        ids = torch.tensor([[pad] * (width - len(row)) + row for row in encoded])
        mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in encoded])
        config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                  eos_token_id=sorted(eos) or None, pad_token_id=pad)
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
        seconds = round((time.perf_counter() - started) / len(prompts), 3)
        results = []
        for row, input_ids in zip(out[:, width:].tolist(), encoded):
            end = next((i for i, token in enumerate(row) if token in eos), None)
            new = row[: end + 1] if end is not None else row
            finish: Literal["eos", "length"] = "eos" if end is not None else "length"
            shown = new[:-1] if finish == "eos" else new
            results.append(Generation(self.role, self.artifact, self.tokenizer.decode(input_ids), len(input_ids),
                                      self.tokenizer.decode(shown), finish, len(new), seconds))
        return results

    def next_tokens(self, text: str, k: int = 5) -> list[tuple[str, float]]:
        """The k most likely next tokens after raw `text`, with their probabilities."""
        ids = torch.tensor([self.encode(text, chat=False)])
        with torch.inference_mode():
            logits = self.model(input_ids=ids).logits[0, -1]
        probs = torch.softmax(logits.float(), dim=-1)
        top = torch.topk(probs, k)
        return [(self.tokenizer.decode([i]), round(float(p), 4)) for p, i in zip(top.values, top.indices)]

    def provenance(self) -> dict[str, str]:
        """Where this model came from and what ran it, for provenance tables on pages."""
        import transformers

        spec = self.spec
        info = {"role": spec.role, "artifact": spec.artifact, "source": spec.kind, "identity": spec.identity,
                "parameters": f"{sum(p.numel() for p in self.model.parameters()) / 1e6:.0f}M",
                "architecture": type(self.model).__name__, "dtype": "float32 (converted)",
                "chat template": "yes" if self.has_chat_template else "no",
                "transformers": transformers.__version__, "torch": torch.__version__}
        if spec.kind == "preset":
            preset = PRESETS[spec.ref]
            size = sum(p.stat().st_size for p in preset_chunk_paths(spec))
            info.update({"upstream": preset.upstream, "quantization": preset.quantization, "licence": preset.licence,
                         "file": preset.gguf_name, "file size": f"{size / 1e6:.0f} MB", "sha256": preset.sha256,
                         "PyPI packages": ", ".join(preset.packages)})
        elif spec.kind == "hub":
            info.update({"upstream": spec.ref, "revision": spec.revision})
        return info

    def _eos_ids(self) -> set[int]:
        found: set[int] = set()
        for value in (self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id):
            if isinstance(value, int):
                found.add(value)
            elif value:
                found.update(value)
        return found


class ModelHandle:
    """What a snippet sees as `base` or `instruct`: loads on first use and records that it was used."""

    def __init__(self, role: str, get: Callable[[str], LoadedModel], used: set[str]) -> None:
        self._role, self._get, self._used = role, get, used

    def __getattr__(self, name: str):
        self._used.add(self._role)
        return getattr(self._get(self._role), name)

    def __repr__(self) -> str:
        return f"<{self._role} model handle>"

    def __reduce__(self):  # a checkpoint stores the role; restoring re-binds to this worker's model
        return (handle, (self._role,))


HANDLES: dict[str, ModelHandle] = {}  # the current child's handles, for unpickling


def handle(role: str) -> ModelHandle:
    return HANDLES[role]


def load_model(spec: ModelSpec, model_cache: Path, log: Callable[[str], None]) -> LoadedModel:
    """Load from a local folder only; presets are converted once from their verified GGUF."""
    folder = {"preset": lambda: converted_folder(spec, model_cache, log), "hub": lambda: hub_snapshot(spec),
              "path": lambda: Path(spec.ref)}[spec.kind]()
    if not (folder / "config.json").is_file():
        raise ModelNotFound(with_fix(f"model '{spec.role}': {folder} holds no saved model (config.json missing)",
                                     "point `path:` at a folder written by save_pretrained()"))
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
    model.eval()
    return LoadedModel(spec, tokenizer, model)


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
            done = subprocess.run([sys.executable, "-m", "llmexec.convert", spec.ref, str(target), spec.role],
                                  stdout=sys.stderr, stderr=subprocess.PIPE, env=os.environ.copy(), text=True)
            sys.stderr.write(done.stderr)  # kept in the worker log
            if done.returncode != 0:
                reason = done.stderr.partition(MESSAGE_MARK)[2].strip()
                if reason:  # the converter's own message already says what, why and how to fix it
                    raise ModelIntegrityError(reason)
                raise WorkerError(with_fix(f"converting model '{spec.role}' ({preset.name}) failed with exit code "
                                           f"{done.returncode}: {done.stderr.strip()[-600:]}",
                                           "see the worker log for the cause; then run: make models"))
    return target
