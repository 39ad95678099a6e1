"""The drift report: a Markdown page (readable as a PR comment) of outputs that changed or could not be run."""

from __future__ import annotations

from typing import Any

from ..plan.blocks import fence_for
from ..resolve.store import Drift
from ..resolve.tolerance import RULE, Difference, compare
from ..vocabulary import LOCK_COMMAND


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
                found.append(f"{name.replace('_', ' ')}: {before.get(name, '?')} in the lockfile, {after.get(name, '?')} here")
    for role, model in (new.get("models") or {}).items():
        before = ((old.get("models") or {}).get(role) or {}).get("weights_sha256")
        if before and model.get("weights_sha256") and before != model["weights_sha256"]:
            found.append(f"the {role} model's weights: tuning its recipe gave sha256 {before[:16]}… where the lockfile "
                         f"was made and {model['weights_sha256'][:16]}… here, so its outputs can differ")
    sizes = ((old.get("outcome") or {}).get("batch_size"), (new.get("outcome") or {}).get("batch_size"))
    if all(sizes) and sizes[0] != sizes[1]:
        found.append(f"batch: generated with {sizes[0]} prompt(s) in its batch in the lockfile, {sizes[1]} here")
    return found


def mismatch(old: dict[str, Any], new: dict[str, Any], entry_path: str) -> str:
    """The error for one block whose re-executed output differs from its entry: where, first difference, why."""
    found = compare(old, new) or Difference("output", "", "", "")
    differences = setup_differences(old, new)
    engine = _engine_reason(old, new)
    why = engine or ("what differs between the machine that wrote the entry and this one: " + "; ".join(differences)
           if differences else "the libraries and machine features recorded with the entry match this machine, so "
           "the entry does not hold what these inputs produce here (edited by hand, or a non-deterministic block)")
    return (f"{_where(new)}: {_what(new)}: the output differs from its lockfile entry {entry_path}\n"
            f"    first difference at line {found.line}, column {found.column} of {found.field} ({found.why}):\n"
            f"      lockfile: {found.before!r}\n      now:      {found.after!r}\n    {why}\n"
            f"    (the tolerance, README 'Proving the lockfile': {RULE})\n"
            f"  --> an entry edited by hand must be restored (git checkout <ref> -- {entry_path}) or re-recorded; "
            f"if the new output is right: {LOCK_COMMAND}")


def _engine_reason(old: dict[str, Any], new: dict[str, Any]) -> str:
    """For a model on a serving engine: did its input change (the server laid the same request out in other
    tokens), or did the engine answer the same input differently? '' for local models."""
    models = [m for m in (new.get("models") or {}).values() if str(m.get("identity", "")).startswith("endpoint:")]
    if not models:
        return ""
    names = ", ".join(m["identity"].removeprefix("endpoint:") for m in models)
    tokens = ((old.get("outcome") or {}).get("input_tokens"), (new.get("outcome") or {}).get("input_tokens"))
    if old.get("kind") == "generate" and all(tokens) and tokens[0] != tokens[1]:
        return (f"the input changed: the server laid the same request out in {tokens[0]} tokens for the lockfile and "
                f"{tokens[1]} now ({names}: its chat template or tokenizer is not what it was)")
    return (f"the engine answered differently to the same input ({names}, the same prompt tokens): serving engines "
            "are not batch-invariant by default, so concurrent load and prompt caching can change even greedy "
            "outputs (README, 'Running on a serving engine')")


def _where(entry: dict[str, Any]) -> str:
    return entry.get("where") or f"{entry.get('page')} (block {entry.get('index', 0) + 1})"


def _what(entry: dict[str, Any]) -> str:
    return f"generate block, {entry.get('role')} model" if entry.get("kind") == "generate" else "code block"


def _cell(text: str, width: int = 60) -> str:
    """One table cell: the first line of an output, shortened, with the characters a table cannot hold escaped."""
    first = text.strip().split("\n")[0]
    short = first[:width] + ("…" if len(first) > width or "\n" in text.strip() else "")
    return "`" + short.replace("`", "'").replace("|", "\\|") + "`" if short else "(empty)"


def table(drift: Drift) -> list[str]:
    """One row per re-executed block that has a lockfile entry: page:line, old output, new output, reproduced?"""
    rows = [(new, old, True) for old, new in drift.matched] + [(new, old, False) for old, new in drift.changed]
    if not rows:
        return []
    lines = ["| block | lockfile output | new output | reproduced |", "| :-- | :-- | :-- | :-: |"]
    for new, old, same in sorted(rows, key=lambda row: (row[0].get("page", ""), row[0].get("line", 0), row[0].get("role", ""))):
        lines.append(f"| `{_where(new)}` {_what(new)} | {_cell(observable_text(old))} | {_cell(observable_text(new))} "
                     f"| {'yes' if same else '**no**'} |")
    return lines + [""]


def _fence(text: str, lang: str = "text") -> str:
    fence = fence_for(text)
    return f"{fence}{lang}\n{text}\n{fence}"


def _title(entry: dict[str, Any]) -> str:
    return f"`{_where(entry)}` · {_what(entry)}"


def _details(summary: str, text: str) -> str:
    return f"<details><summary>{summary}</summary>\n\n{_fence(text)}\n\n</details>"


def render(drift: Drift, mode: str) -> str:
    """The whole report; stable order (page, then position) so two runs over the same change read the same."""
    parts = [f"# Executed outputs: drift report ({mode} build)", ""]
    total = len(drift.changed) + len(drift.new) + len(drift.unexecuted)
    if drift.claims:
        parts += [f"## Sentences these outputs make false ({len(drift.claims)})", ""]
        for where, sentence, check, why in sorted(drift.claims):
            parts.append(f"- `{where}`: {sentence}  \n  check `{check}`" + (f": {why}" if why else ""))
        parts.append("")
    parts += [f"Compared with the tolerance: {RULE} (README, 'Proving the lockfile').", ""]
    if not total:
        parts.append(f"Every executed block matches the committed lockfile ({len(drift.matched)} re-executed)."
                     if drift.matched or mode == "verify" else "Every block has its lockfile entry.")
        return "\n".join(parts + [""] + table(drift)) + "\n"
    parts.append(f"- {len(drift.changed)} block(s) produced a different output than the lockfile")
    parts.append(f"- {len(drift.matched)} block(s) re-executed and reproduced their lockfile entry")
    if mode == "preview":
        parts.append(f"- {len(drift.new)} block(s) have no lockfile entry and were executed for this preview only")
    else:
        parts.append(f"- {len(drift.new)} block(s) have no lockfile entry")
    parts.append(f"- {len(drift.unexecuted)} block(s) changed inputs and were not executed in this build")
    parts.append("")
    parts += table(drift)
    key = lambda item: (item.get("page", ""), item.get("line", 0), item.get("role", ""))  # noqa: E731
    if drift.changed:
        parts += ["## Outputs that changed", ""]
        for old, new in sorted(drift.changed, key=lambda pair: key(pair[1])):
            before, after = observable_text(old), observable_text(new)
            found = compare(old, new) or Difference("output", "", "", "")
            parts.append(f"### {_title(new)}")
            parts.append(f"First difference at line {found.line}, column {found.column} of {found.field} "
                         f"({found.why}):")
            parts.append(_fence(f"- {found.before}\n+ {found.after}", "diff"))
            parts.append(_details("Lockfile output", before))
            parts.append(_details("New output", after))
            parts.append("")
    if drift.new:
        parts += ["## Blocks with no lockfile entry", ""]
        for new in sorted(drift.new, key=key):
            parts += [f"### {_title(new)}", _details("Input", new.get("source", "")), _details("New output", observable_text(new)), ""]
    if drift.unexecuted:
        parts += ["## Changed inputs, not executed in this build", ""]
        for new, old in sorted(drift.unexecuted, key=lambda pair: key(pair[0])):
            parts.append(f"### {_title(new)}")
            parts.append(_details("New input", new.get("source", "")))
            if old:
                parts.append(_details("Previous input (lockfile)", old.get("source", "")))
                parts.append(_details("Previous output (lockfile)", observable_text(old)))
            else:
                parts.append("A new block: the lockfile has nothing at this place.")
            parts.append("")
        parts.append(f"To record their outputs, a maintainer runs: `{LOCK_COMMAND}`")
    return "\n".join(parts) + "\n"
