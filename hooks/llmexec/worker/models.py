"""Worker side: loading a configured model (converting presets once) and the API snippets call on it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ..core.models import PRESETS, ModelSpec, hub_snapshot, preset_chunk_paths
from ..core.request import Request, chat_messages
from ..errors import ModelNotFound, with_fix
from .convert import converted_folder
from .decoding import Generation, generate_batch, top_next_tokens


class ModelUnavailable(RuntimeError):
    """Raised inside a snippet that touches a model that could not be loaded."""


class LoadedModel:
    """A model and its tokenizer in fp32, with helpers that show exactly what the model saw."""

    def __init__(self, spec: ModelSpec, tokenizer, model) -> None:
        self.spec, self.role, self.artifact = spec, spec.role, spec.artifact
        self.tokenizer, self.model = tokenizer, model
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        self.training: dict[str, Any] = {}  # a tuned model's training.json: recipe, losses, weights sha256

    def __repr__(self) -> str:
        return f"<{self.role} model: {self.artifact}>"

    def format_prompt(
        self,
        prompt: str | list[dict[str, str]] = "",
        *,
        template: str = "auto",
        system: str = "",
        prefill: str = "",
        generation_prompt: bool = True,
    ) -> str:
        """The text handed to the tokenizer: raw for base models, the chat template applied otherwise.
        `prompt` may be a list of messages ({"role": ..., "content": ...}) for a whole conversation."""
        return self._format(
            Request.of(prompt, template=template, system=system, prefill=prefill, generation_prompt=generation_prompt)
        )[0]

    def _format(self, p: Request) -> tuple[str, bool]:
        messages = chat_messages(
            p, self.has_chat_template, f"the {self.role} model ({self.artifact}) has no chat template; use template=raw"
        )
        if messages is None:
            return p.prompt + p.prefill, False
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=p.generation_prompt)
        return text + p.prefill, True

    def encode(self, text: str, *, chat: bool) -> list[int]:
        """Token ids; a chat-formatted text already holds its special tokens, raw text gets the model's BOS."""
        return self.tokenizer(text, add_special_tokens=not chat)["input_ids"]

    def generate(
        self,
        prompt: str | list[dict[str, str]] = "",
        *,
        max_new_tokens: int = 48,
        template: str = "auto",
        system: str = "",
        prefill: str = "",
        stop: str | list[str] | tuple[str, ...] = (),
        seed: int | None = None,
        temperature: float = 1.0,
        top_p: float = 1.0,
        generation_prompt: bool = True,
        repetition_penalty: float = 1.0,
    ) -> Generation:
        """Greedy continuation of `prompt` (chat template applied where the model has one); with seed=, a
        reproducible sampled draw; prefill= starts the reply; stop= ends it at the first of these strings;
        repetition_penalty= above 1 makes tokens already in the prompt or the reply less likely."""
        return self.generate_batch(
            [
                Request.of(
                    prompt,
                    max_new_tokens=max_new_tokens,
                    template=template,
                    system=system,
                    prefill=prefill,
                    stop=stop,
                    seed=seed,
                    temperature=temperature,
                    top_p=top_p,
                    generation_prompt=generation_prompt,
                    repetition_penalty=repetition_penalty,
                )
            ]
        )[0]

    def chat(
        self, message: str | list[dict[str, str]], *, system: str = "", max_new_tokens: int = 48, **options
    ) -> Generation:
        """generate() with the chat template forced; `message` may be a whole conversation (a list of messages)."""
        return self.generate(message, template="chat", system=system, max_new_tokens=max_new_tokens, **options)

    def generate_batch(self, prompts: list[Request]) -> list[Generation]:
        """One left-padded batch, run to its longest row's max_new_tokens; each row is then cut at its own limit and
        stop strings, so greedy fp32 gives each row the tokens it would get alone (the tests check it). The rows must
        decode alike (Request.decoding_key); a seeded draw must be given alone, since the rows share one random stream."""
        return generate_batch(self, prompts)

    def next_tokens(
        self,
        text: str | list[dict[str, str]],
        k: int = 5,
        *,
        template: str = "raw",
        system: str = "",
        prefill: str = "",
    ) -> list[tuple[str, float]]:
        """The k most likely next tokens with their probabilities, after `text` as given (template="raw", the
        default) or laid out in the chat template with the assistant's turn opened (template="chat" or "auto")."""
        return top_next_tokens(self, Request.of(text, template=template, system=system, prefill=prefill), k)

    def provenance(self) -> dict[str, str]:
        """Where this model came from and what ran it, for provenance tables on pages."""
        import transformers

        spec = self.spec
        info = {
            "role": spec.role,
            "artifact": spec.artifact,
            "source": spec.kind,
            "identity": spec.identity,
            "parameters": f"{sum(p.numel() for p in self.model.parameters()) / 1e6:.0f}M",
            "architecture": type(self.model).__name__,
            "dtype": "float32 (converted)",
            "chat template": "yes" if self.has_chat_template else "no",
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        }
        if spec.kind == "preset":
            preset = PRESETS[spec.ref]
            size = sum(p.stat().st_size for p in preset_chunk_paths(spec))
            info.update(
                {
                    "upstream": preset.upstream,
                    "quantization": preset.quantization,
                    "licence": preset.licence,
                    "file": preset.gguf_name,
                    "file size": f"{size / 1e6:.0f} MB",
                    "sha256": preset.sha256,
                    "PyPI packages": ", ".join(preset.packages),
                }
            )
        elif spec.kind == "hub":
            info.update({"upstream": spec.ref, "revision": spec.revision})
        return info


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


def model_folder(
    spec: ModelSpec, model_cache: Path, log: Callable[[str], None], threads: int = 2, train: bool = True
) -> Path:
    """The local folder of a configured model: presets are converted once, tuned models trained once (unless
    train=False: a preview build, which raises NotTrainedHere instead)."""
    from .tuned import tuned_folder

    return {
        "preset": lambda: converted_folder(spec, model_cache, log),
        "hub": lambda: hub_snapshot(spec),
        "path": lambda: Path(spec.ref),
        "tuned": lambda: tuned_folder(
            spec, model_cache, log, threads, lambda start: model_folder(start, model_cache, log, threads), train
        ),
    }[spec.kind]()


def load_model(
    spec: ModelSpec, model_cache: Path, log: Callable[[str], None], threads: int = 2, train: bool = True
) -> LoadedModel:
    """Load from a local folder only (a model on a serving engine is connected to by the zygote instead)."""
    from .tuned import training_record

    folder = model_folder(spec, model_cache, log, threads, train)
    if not (folder / "config.json").is_file():
        raise ModelNotFound(
            with_fix(
                f"model '{spec.role}': {folder} holds no saved model (config.json missing)",
                "point `path:` at a folder written by save_pretrained()",
            )
        )
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
    model.eval()
    loaded = LoadedModel(spec, tokenizer, model)
    loaded.training = training_record(folder)
    return loaded
