"""Preference tuning: the recipe of a model made from a tuned one by DPO, and its preference pairs (no torch)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, with_fix
from .recipes import Method, read_records
from .templates import Turn

# The DPO loop's own version (worker/prefer.py): raise it when a change there changes the weights it makes.
DPO_TRAINER = 1


@dataclass(frozen=True)
class PreferenceRecipe:
    """Everything that decides the preferred weights (Direct Preference Optimization, Rafailov et al., 2023); with
    the starting (tuned) model's identity, the pairs' bytes and the trainer's version it is the model's identity."""

    start: str  # the role of the tuned model it starts from; its weights are also the frozen reference
    data: str  # path of the preference pairs (JSON lines), relative to mkdocs.yml
    beta: float  # how far the policy may move from the reference: the scale of the implicit reward
    steps: int
    learning_rate: float
    batch_size: int  # pairs per step
    seed: int
    method: Method
    template: str  # the starting model's turn format (its recipe's template), copied here
    max_tokens: int  # a prompt with its reply is cut to this many tokens

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Pair:
    """One preference: a conversation that ends with the user's turn, the reply preferred and the reply rejected."""

    kind: str
    prompt: tuple[Turn, ...]
    chosen: str
    rejected: str
    line: int

    def text(self) -> str:
        """The prompt's texts, for comparing against the evaluation set."""
        return "\n\n".join(content for _, content in self.prompt)


def read_pairs(path: Path, shown: str = "") -> list[Pair]:
    """The preference pairs, each checked; a malformed line is a ConfigError naming the file and line."""
    shown = shown or str(path)
    if not path.is_file():
        raise ConfigError(
            with_fix(
                f"the preference pairs {shown} do not exist",
                "set prefer.pairs in extra.llm_exec.models.preferred to a JSON-lines file of pairs",
            )
        )
    pairs = read_records(
        path,
        shown,
        _pair,
        "a preference pair",
        'each line is {"kind": "...", "messages": [{"role": "user", "content": "..."}], '
        '"chosen": "...", "rejected": "..."}, the messages optionally opening with a '
        "system message and ending with the user's",
    )
    if not pairs:
        raise ConfigError(with_fix(f"the preference pairs {shown} hold no pair", "add pairs, one per line"))
    return pairs


def _pair(record: Any, number: int) -> Pair:
    if not isinstance(record, dict):
        raise ValueError("a line must be a JSON object")
    messages = record["messages"]
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    turns = tuple((str(m["role"]), m["content"]) for m in messages)
    if any(not isinstance(c, str) or not c.strip() for _, c in turns):
        raise ValueError("every message needs non-empty text in 'content'")
    body = turns[1:] if turns[0][0] == "system" else turns
    if not body or [r for r, _ in body] != (["user", "assistant"] * len(body))[: len(body)] or body[-1][0] != "user":
        raise ValueError("turns must alternate user, assistant, ... and end with the user's")
    chosen, rejected, kind = record["chosen"], record["rejected"], record["kind"]
    for name, value in (("chosen", chosen), ("rejected", rejected), ("kind", kind)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"'{name}' must be non-empty text")
    if chosen.strip() == rejected.strip():
        raise ValueError("'chosen' and 'rejected' are the same reply")
    return Pair(kind, turns, chosen, rejected, number)


def identity(recipe: PreferenceRecipe, start_identity: str, data_sha256: str, versions: dict[str, str]) -> str:
    """The canonical JSON that is hashed into the preferred model's identity."""
    return json.dumps(
        {
            "objective": "dpo",
            "recipe": recipe.to_json() | {"data": data_sha256},
            "start": start_identity,
            "trainer": DPO_TRAINER,
            "versions": versions,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
