"""What one model is asked and how it decodes: one torch-free value, built once, keyed, sent and used by every model."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ..vocabulary import Template

Turns = tuple[tuple[str, str], ...]  # (role, content) chat turns


@dataclass(frozen=True)
class Request:
    """A prompt (or a whole conversation), its layout, and the decoding. A new option is one field here: it joins the
    key and the lockfile's settings only when it differs from its default (so older keys stay valid), and the batch
    key unless it is per prompt (_LAYOUT)."""

    prompt: str = ""  # a generate block's text; with `messages`, its last user turn
    template: Template = "auto"  # auto: the chat template where the model has one; chat; raw
    system: str = ""
    prefill: str = ""  # the start of the reply, given to the model; it continues from there
    messages: Turns = ()  # a whole conversation instead of `prompt` (a block's earlier turns, then its prompt)
    generation_prompt: bool = True  # chat template: end with the opening of the assistant's turn
    stop: tuple[str, ...] = ()  # the answer ends at the first of these strings
    max_new_tokens: int = 48  # 0 in a block that leaves it to the site's setting, until the plan resolves it
    seed: int | None = None  # a reproducible sampled draw instead of greedy decoding
    temperature: float = 1.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0  # above 1, tokens already in the prompt or the reply are made less likely

    @classmethod
    def of(cls, prompt: str | list[dict[str, str]] = "", **options: Any) -> Request:
        """The snippet API's arguments (generate(), chat(), next_tokens()): a text or a list of chat messages."""
        if isinstance(options.get("stop"), str):
            options["stop"] = (options["stop"],)
        elif "stop" in options:
            options["stop"] = tuple(options["stop"])
        if isinstance(prompt, str):
            return cls(prompt, **options)
        return cls("", messages=tuple((str(m["role"]), str(m["content"])) for m in prompt), **options)

    @property
    def history(self) -> Turns:
        """The turns before the last one (a block's earlier turns)."""
        return self.messages[:-1]

    @property
    def sampled(self) -> bool:
        return self.seed is not None

    @property
    def alone(self) -> bool:
        """Run on a local model in a batch of one: the rows of a batch would not be independent (a seeded draw's
        rows share one random stream; transformers' repetition penalty counts a row's left padding as seen tokens)."""
        return self.sampled or self.repetition_penalty != 1.0

    def describe(self) -> str:
        """The decoding as pages and the lockfile show it, e.g. "greedy, fp32"."""
        penalty = f", repetition penalty {self.repetition_penalty:g}" if self.repetition_penalty != 1.0 else ""
        if self.seed is None:
            return f"greedy{penalty}, fp32"
        return f"sampled with seed {self.seed} (temperature {self.temperature:g}, top-p {self.top_p:g}{penalty}), fp32"

    def keyed(self) -> dict[str, Any]:
        """The fields of a cache key (names and values as keys have always had them): what the model saw and how it
        decoded. Options beyond the first ones join only when set."""
        return {
            "prompt": self.prompt,
            "system": self.system,
            "template": self.template,
            "max_new_tokens": self.max_new_tokens,
            "decoding": self._decoding_key(),
            **self.extras(),
        }

    def recorded(self) -> dict[str, Any]:
        """A lockfile entry's settings (its prompt is the entry's source)."""
        return {
            "system": self.system,
            "template": self.template,
            "max_new_tokens": self.max_new_tokens,
            "decoding": self.describe(),
            **self.extras(),
        }

    def extras(self) -> dict[str, Any]:
        """Settings that differ from their defaults, as JSON values; the ones always written (and the seeded draw,
        written as `decoding`) are left out."""
        found: dict[str, Any] = {"history": [list(turn) for turn in self.history]} if self.history else {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in _ALWAYS and value != f.default:
                found[f.name] = list(value) if isinstance(value, tuple) else value
        return found

    def batch_key(self) -> tuple[Any, ...]:
        """Where a request sorts among others (sortable): first how it decodes (`decoding_key`: requests with equal
        ones may share a batch), then its token limit and the length of its text (`row_key`)."""
        return (*self.decoding_key(), *self.row_key())

    def row_key(self) -> tuple[int, int]:
        """Its token limit and the length of its text: sorted by these, a batch holds rows of similar limits (it runs
        to its longest row's) and similar lengths (it is padded to its longest prompt)."""
        size = len(self.prompt) + len(self.system) + len(self.prefill) + sum(len(c) for _, c in self.messages)
        return self.max_new_tokens, size

    def decoding_key(self) -> tuple[Any, ...]:
        """Requests with equal keys decode alike and may share a batch: each row has its own token limit and stop
        strings (a batch runs to its longest row's limit; each row is cut at its own)."""
        rest = tuple(getattr(self, f.name) for f in fields(self) if f.name not in _ALWAYS + _LAYOUT)
        return (-1 if self.seed is None else self.seed, self.temperature, self.top_p, *rest)

    def _decoding_key(self) -> str:
        if self.seed is None:
            return "greedy-fp32"
        return f"sample-fp32:seed={self.seed}:temperature={self.temperature:g}:top_p={self.top_p:g}"


_ALWAYS = ("prompt", "system", "template", "max_new_tokens", "messages", "seed", "temperature", "top_p")
_LAYOUT = ("prefill", "generation_prompt", "stop")  # per prompt: rows of one batch may differ in these


def chat_messages(r: Request, has_chat_template: bool, no_template: str) -> list[dict[str, str]] | None:
    """The messages a chat template lays out, or None when the prompt goes to the model as raw text (the same rule
    for local models and models on a serving engine); `no_template` is the error when chat is asked of neither."""
    use_chat = r.template == "chat" or (r.template == "auto" and has_chat_template) or bool(r.messages)
    if use_chat and not has_chat_template:
        raise ValueError(no_template)
    if not use_chat:
        if r.system:
            raise ValueError("system= needs a chat template; the prompt is given to this model as raw text")
        return None
    messages = [{"role": "system", "content": r.system}] if r.system else []
    return messages + (
        [{"role": role, "content": c} for role, c in r.messages] or [{"role": "user", "content": r.prompt}]
    )
