"""Why a re-executed output differs from its lockfile entry: the first difference, and what differs in the setup."""

from __future__ import annotations

from typing import Any

from ..vocabulary import LOCK_COMMAND
from .tolerance import RULE, Difference, compare


def observable_text(entry: dict[str, Any]) -> str:
    """What a reader sees of an entry's output."""
    outcome = entry.get("outcome") or {}
    if entry.get("kind") == "generate":
        return f"{outcome.get('text', '')}\n[stopped: {outcome.get('finish_reason', '')}]"
    return outcome.get("output", "")


def setup_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between the setup that wrote `old` and the one that produced `new`: library versions,
    CPU architecture and vector extensions, torch threads, and the batch a generation ran in."""
    found = []
    for group in ("versions", "machine"):
        before, after = old.get(group) or {}, new.get(group) or {}
        if not before and after:
            found.append(f"the lockfile entry does not record its {group} (it predates that record)")
            continue
        for name in sorted(set(before) | set(after)):
            if before.get(name) != after.get(name):
                found.append(
                    f"{name.replace('_', ' ')}: {before.get(name, '?')} in the lockfile, {after.get(name, '?')} here"
                )
    for role, model in (new.get("models") or {}).items():
        before = ((old.get("models") or {}).get(role) or {}).get("weights_sha256")
        if before and model.get("weights_sha256") and before != model["weights_sha256"]:
            found.append(
                f"the {role} model's weights: tuning its recipe gave sha256 {before[:16]}… where the lockfile "
                f"was made and {model['weights_sha256'][:16]}… here, so its outputs can differ"
            )
    sizes = ((old.get("outcome") or {}).get("batch_size"), (new.get("outcome") or {}).get("batch_size"))
    if all(sizes) and sizes[0] != sizes[1]:
        found.append(f"batch: generated with {sizes[0]} prompt(s) in its batch in the lockfile, {sizes[1]} here")
    return found


def mismatch(old: dict[str, Any], new: dict[str, Any], entry_path: str) -> str:
    """The error for one block whose re-executed output differs from its entry: where, first difference, why."""
    found = compare(old, new) or Difference("output", "", "", "")
    differences = setup_differences(old, new)
    engine = _engine_reason(old, new)
    why = engine or (
        "what differs between the machine that wrote the entry and this one: " + "; ".join(differences)
        if differences
        else "the libraries and machine features recorded with the entry match this machine, so "
        "the entry does not hold what these inputs produce here (edited by hand, or a non-deterministic block)"
    )
    return (
        f"{where(new)}: {what(new)}: the output differs from its lockfile entry {entry_path}\n"
        f"    first difference at line {found.line}, column {found.column} of {found.field} ({found.why}):\n"
        f"      lockfile: {found.before!r}\n      now:      {found.after!r}\n    {why}\n"
        f"    (the tolerance, README 'Proving the lockfile': {RULE})\n"
        f"  --> an entry edited by hand must be restored (git checkout <ref> -- {entry_path}) or re-recorded; "
        f"if the new output is right: {LOCK_COMMAND}"
    )


def _engine_reason(old: dict[str, Any], new: dict[str, Any]) -> str:
    """For a model on a serving engine: did its input change (the server laid the same request out in other
    tokens), or did the engine answer the same input differently? '' for local models."""
    models = [m for m in (new.get("models") or {}).values() if str(m.get("identity", "")).startswith("endpoint:")]
    if not models:
        return ""
    names = ", ".join(m["identity"].removeprefix("endpoint:") for m in models)
    tokens = ((old.get("outcome") or {}).get("input_tokens"), (new.get("outcome") or {}).get("input_tokens"))
    if old.get("kind") == "generate" and all(tokens) and tokens[0] != tokens[1]:
        return (
            f"the input changed: the server laid the same request out in {tokens[0]} tokens for the lockfile and "
            f"{tokens[1]} now ({names}: its chat template or tokenizer is not what it was)"
        )
    return (
        f"the engine answered differently to the same input ({names}, the same prompt tokens): serving engines "
        "are not batch-invariant by default, so concurrent load and prompt caching can change even greedy "
        "outputs (README, 'Running on a serving engine')"
    )


def where(entry: dict[str, Any]) -> str:
    return entry.get("where") or f"{entry.get('page')} (block {entry.get('index', 0) + 1})"


def what(entry: dict[str, Any]) -> str:
    return f"generate block, {entry.get('role')} model" if entry.get("kind") == "generate" else "code block"
