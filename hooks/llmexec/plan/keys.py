"""Cache keys: sha256 over explicit, named fields (never repr of objects)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .. import SCHEMA_VERSION
from ..core.files import digest
from .blocks import Block
from ..core.models import ModelSpec


def code_keys(blocks: Sequence[Block], models: Mapping[str, ModelSpec]) -> list[str]:
    """Keys for a page's code blocks, chained: a block's output may depend on every block before it."""
    identities = {role: spec.identity for role, spec in sorted(models.items())}
    keys: list[str] = []
    previous = ""
    for block in blocks:
        previous = digest({"schema": SCHEMA_VERSION, "kind": "code", "code": block.source,
                           "models": identities, "previous": previous})
        keys.append(previous)
    return keys


def generate_key(block: Block, model: ModelSpec, max_new_tokens: int) -> str:
    """Key for one model's answer to a generate block: what the model saw and how it decoded."""
    return digest({
        "schema": SCHEMA_VERSION,
        "kind": "generate",
        "model": model.identity,
        "prompt": block.source,
        "system": block.system,
        "template": block.template,
        "max_new_tokens": max_new_tokens,
        "decoding": decoding(block),
        **{name: value for name, value in (("prefill", block.prefill), ("stop", list(block.stop)),
                                            ("generation_prompt", block.generation_prompt),
                                            ("history", [list(turn) for turn in block.history]))
           if value != _DEFAULTS[name]},
    })


_DEFAULTS: dict[str, object] = {"prefill": "", "stop": [], "generation_prompt": True, "history": []}  # left out: old keys stay valid


def decoding(block: Block) -> str:
    """How tokens are chosen, as keyed: greedy, or a seeded draw with its settings."""
    if block.seed is None:
        return "greedy-fp32"
    return f"sample-fp32:seed={block.seed}:temperature={block.temperature:g}:top_p={block.top_p:g}"
