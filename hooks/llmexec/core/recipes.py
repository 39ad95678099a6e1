"""Tuned models: the recipe of an instruct variant made during the build, its turn templates and its data (no torch)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from ..errors import ConfigError, with_fix

Method = Literal["full", "layers"]  # layers: every weight except the (tied) embedding matrix


@dataclass(frozen=True)
class TurnTemplate:
    """How a conversation is laid out for the model; the tuned tokenizer gets `jinja` as its chat template."""

    user: str
    model: str
    end: str  # closes every turn; the model learns to emit it, and generation stops on it
    after_end: str
    bos: bool
    system: str = ""  # a system turn's opening; "" means the system text is put before the first user message
    jinja: str = ""


_GEMMA_JINJA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set prefix = messages[0]['content'] + '\\n\\n' %}"
    "{% set turns = messages[1:] %}{% else %}{% set prefix = '' %}{% set turns = messages %}{% endif %}"
    "{% for m in turns %}{{ '<start_of_turn>' + ('model' if m['role'] == 'assistant' else m['role']) + '\\n' }}"
    "{{ (prefix if loop.first else '') + m['content'] + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)
_CHATML_JINJA = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

TEMPLATES: dict[str, TurnTemplate] = {
    "gemma": TurnTemplate(
        "<start_of_turn>user\n", "<start_of_turn>model\n", "<end_of_turn>", "\n", True, "", _GEMMA_JINJA
    ),
    "chatml": TurnTemplate(
        "<|im_start|>user\n",
        "<|im_start|>assistant\n",
        "<|im_end|>",
        "\n",
        False,
        "<|im_start|>system\n",
        _CHATML_JINJA,
    ),
}


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the tuned weights; with the starting model's identity, the data's bytes and the
    library versions it is the tuned model's identity."""

    start: str  # the role of the model it starts from (base)
    data: str  # path of the conversations (JSON lines), relative to mkdocs.yml
    steps: int
    learning_rate: float
    batch_size: int
    seed: int
    method: Method
    template: str
    max_tokens: int  # a conversation is cut to this many tokens

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Turn = tuple[str, str]  # (role, content)


def read_conversations(path: Path) -> list[list[Turn]]:
    """The training conversations, each checked; a malformed one is a ConfigError naming the file and line."""
    if not path.is_file():
        raise ConfigError(
            with_fix(
                f"the tuning data {path} does not exist",
                "set tune.conversations in extra.llm_exec.models.tuned to a JSON-lines file of conversations",
            )
        )
    conversations = read_records(
        path,
        str(path),
        lambda record, number: _conversation(record),
        "a conversation",
        'each line is {"messages": [{"role": "user", "content": "..."}, '
        '{"role": "assistant", "content": "..."}]}, optionally opening with a system message',
    )
    if not conversations:
        raise ConfigError(with_fix(f"the tuning data {path} holds no conversation", "add conversations, one per line"))
    return conversations


T = TypeVar("T")


def read_records(path: Path, shown: str, parse: Callable[[Any, int], T], what: str, shape: str) -> list[T]:
    """Each non-blank line of a JSON-lines file, parsed by `parse(record, line number)`; a line that is not JSON or
    that `parse` rejects is a ConfigError naming file:line, what it is not, and the shape a line takes."""
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            found.append(parse(json.loads(line), number))
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(with_fix(f"{shown}:{number}: not {what} ({exc})", shape)) from None
    return found


def _conversation(record: Any) -> list[Turn]:
    messages = record["messages"]
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    turns = [(str(m["role"]), m["content"]) for m in messages]
    if any(not isinstance(c, str) or not c.strip() for _, c in turns):
        raise ValueError("every message needs non-empty text in 'content'")
    body = turns[1:] if turns[0][0] == "system" else turns
    expected = ["user", "assistant"] * len(body)
    if not body or [r for r, _ in body] != expected[: len(body)] or body[-1][0] != "assistant":
        raise ValueError("turns must alternate user, assistant, ... and end with the assistant")
    return turns


def render(template: TurnTemplate, turns: list[Turn]) -> tuple[str, list[tuple[int, int]]]:
    """The conversation as the model sees it (the same text as the tuned tokenizer's chat template), and the
    character spans that are trained: each assistant reply with the end-of-turn marker that closes it."""
    text, trained, prefix = "", [], ""
    if turns[0][0] == "system":
        if template.system:
            text += template.system + turns[0][1] + template.end + template.after_end
        else:
            prefix = turns[0][1] + "\n\n"
        turns = turns[1:]
    for index, (role, content) in enumerate(turns):
        if role == "user":
            text += template.user + (prefix if index == 0 else "") + content + template.end + template.after_end
        else:
            text += template.model
            trained.append((len(text), len(text) + len(content) + len(template.end)))
            text += content + template.end + template.after_end
    return text, trained


def prompt_text(template: TurnTemplate, turns: list[Turn]) -> str:
    """A conversation that ends with the user's turn, laid out in the template's turn format with the opening of
    the model's turn: the tuned tokenizer's chat template output without its BOS (a raw prompt gets the BOS from the
    tokenizer), computed without loading any model."""
    return render(template, turns)[0] + template.model


# The training loop's own version: raise it when a change to worker/tune.py changes the weights it makes (the
# optimizer, the loss's arithmetic), so that cached tuned folders and their lockfile entries go stale.
# 2: fused AdamW.
TRAINER = 2


def identity(recipe: Recipe, start_identity: str, data_sha256: str, versions: dict[str, str]) -> str:
    """The canonical JSON that is hashed into the tuned model's identity."""
    return json.dumps(
        {
            "recipe": recipe.to_json() | {"data": data_sha256},
            "start": start_identity,
            "trainer": TRAINER,
            "versions": versions,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def library_versions() -> dict[str, str]:
    """The libraries that compute the training, read without importing them."""
    from importlib.metadata import version

    return {name: version(name) for name in ("torch", "transformers")}
