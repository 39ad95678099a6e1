"""Lockfile entries: a result with what produced it (no timestamps or line numbers, so rebuilds leave it as it is)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.models import ModelSpec
from ..core.protocol import CodeOutcome, GenerateOutcome, to_json
from ..plan.blocks import Block

if TYPE_CHECKING:
    from ..core.ranking import RankOutcome
    from ..plan.page import Job
    from ..plan.tokens import RankJob


def code(
    block: Block,
    index: int,
    outcome: CodeOutcome | None,
    models: dict[str, ModelSpec],
    versions: dict[str, str],
    machine: dict[str, Any] | None = None,
    weights: dict[str, str] | None = None,
) -> dict[str, Any]:
    used = outcome.models_used if outcome else ()
    return {
        "kind": "code",
        "page": block.page,
        "line": block.line,
        "where": block.where,
        "index": index,
        "role": "",
        "source": block.source,
        "file": block.filename if block.filename != block.page and not block.cell else "",
        "models": {role: _model(models[role], weights) for role in used},
        "versions": versions,
        **_machine(machine),
        "outcome": to_json(outcome) if outcome else {},
    }


def generate(
    job: Job,
    outcome: GenerateOutcome | None,
    models: dict[str, ModelSpec],
    versions: dict[str, str],
    machine: dict[str, Any] | None = None,
    weights: dict[str, str] | None = None,
) -> dict[str, Any]:
    b = job.block
    return {
        "kind": "generate",
        "page": b.page,
        "line": b.line,
        "where": b.where,
        "index": job.index,
        "role": job.role,
        "source": b.source,
        "settings": job.request.recorded(),
        "models": {job.role: _model(models[job.role], weights)},
        "versions": versions,
        **_machine(_ran_on(machine, outcome.threads if outcome else 0)),
        "outcome": {k: v for k, v in to_json(outcome).items() if k != "threads"} if outcome else {},
    }


def ranks(
    job: RankJob,
    outcome: RankOutcome | None,
    models: dict[str, ModelSpec],
    versions: dict[str, str],
    machine: dict[str, Any] | None = None,
    weights: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A recorded answer scored under another model (a tokens block): the answer and prompt it scored are in the key."""
    from ..plan.tokens import entry_fields

    b, role = job.block, job.request.model
    return {
        "kind": "ranks",
        "page": b.page,
        "line": b.line,
        "where": b.where,
        **entry_fields(job),
        "models": {role: _model(models[role], weights)},
        "versions": versions,
        **_machine(machine),
        "outcome": to_json(outcome) if outcome else {},
    }


def _machine(machine: dict[str, Any] | None) -> dict[str, Any]:
    """CPU architecture, vector extensions and threads: what verify names when another machine disagrees."""
    return {"machine": machine} if machine else {}


def _ran_on(machine: dict[str, Any] | None, threads: int) -> dict[str, Any] | None:
    """The worker's machine with the torch threads a generation's batch really ran on (its lane's share of them
    while two models' batches ran at once: worker/lanes.py)."""
    return {**machine, "torch_threads": threads} if machine and threads else machine


def _model(spec: ModelSpec, weights: dict[str, str] | None = None) -> dict[str, str]:
    """The artifact and its identity; a tuned model adds the sha256 of the weights its recipe produced here."""
    found = {"artifact": spec.artifact, "identity": spec.identity}
    if weights and weights.get(spec.role):
        found["weights_sha256"] = weights[spec.role]
    return found
