"""Tuned models: the recipe of an instruct variant made during the build and its data (no torch)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from ..errors import ConfigError, with_fix
from .templates import TEMPLATES as TEMPLATES  # re-exported: the site's snippets (tuning_mask.py) import it from here
from .templates import Turn

Method = Literal["full", "layers"]  # layers: every weight except the (tied) embedding matrix


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
