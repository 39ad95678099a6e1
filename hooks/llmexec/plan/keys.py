"""Cache keys: sha256 over explicit, named fields (never repr of objects)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .. import SCHEMA_VERSION
from ..core.files import digest
from ..core.models import ModelSpec
from ..core.request import Request
from .options import Block


def code_keys(blocks: Sequence[Block], models: Mapping[str, ModelSpec]) -> list[str]:
    """Keys for a page's code blocks, chained: a block's output may depend on every block before it."""
    identities = {role: spec.identity for role, spec in sorted(models.items())}
    keys: list[str] = []
    previous = ""
    for block in blocks:
        previous = digest(
            {"schema": SCHEMA_VERSION, "kind": "code", "code": block.source, "models": identities, "previous": previous}
        )
        keys.append(previous)
    return keys


def generate_key(request: Request, model: ModelSpec) -> str:
    """Key for one model's answer to a generate block: what the model saw and how it decoded."""
    return digest({"schema": SCHEMA_VERSION, "kind": "generate", "model": model.identity, **request.keyed()})
