"""The drift report: a Markdown page (readable as a PR comment) of outputs that changed or could not be run."""

from __future__ import annotations

from typing import Any

from .blocks import fence_for
from .store import LOCK_COMMAND, Drift


def observable_text(entry: dict[str, Any]) -> str:
    """What a reader sees of an entry's output."""
    outcome = entry.get("outcome") or {}
    if entry.get("kind") == "generate":
        return f"{outcome.get('text', '')}\n[stopped: {outcome.get('finish_reason', '')}]"
    return outcome.get("output", "")


def first_divergence(old: str, new: str) -> tuple[int, int, int] | None:
    """(character index, line, column) of the first difference, 1-based line and column; None if equal."""
    if old == new:
        return None
    index = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
    line = old.count("\n", 0, index) + 1
    column = index - (old.rfind("\n", 0, index) + 1) + 1
    return index, line, column


def _fence(text: str, lang: str = "text") -> str:
    fence = fence_for(text)
    return f"{fence}{lang}\n{text}\n{fence}"


def _title(entry: dict[str, Any]) -> str:
    where = entry.get("where") or f"{entry.get('page')} (block {entry.get('index', 0) + 1})"
    what = f"generate, {entry.get('role')} model" if entry.get("kind") == "generate" else "code block"
    return f"`{where}` · {what}"


def _details(summary: str, text: str) -> str:
    return f"<details><summary>{summary}</summary>\n\n{_fence(text)}\n\n</details>"


def render(drift: Drift, mode: str) -> str:
    """The whole report; stable order (page, then position) so two runs over the same change read the same."""
    parts = [f"# Executed outputs: drift report ({mode} build)", ""]
    total = len(drift.changed) + len(drift.new) + len(drift.unexecuted)
    if not total:
        parts.append("Every executed block matches the committed lockfile.")
        return "\n".join(parts) + "\n"
    parts.append(f"- {len(drift.changed)} block(s) produced a different output than the lockfile")
    parts.append(f"- {len(drift.new)} block(s) have no lockfile entry")
    parts.append(f"- {len(drift.unexecuted)} block(s) changed inputs and were not executed in this build")
    parts.append("")
    key = lambda item: (item.get("page", ""), item.get("line", 0), item.get("role", ""))  # noqa: E731
    if drift.changed:
        parts += ["## Outputs that changed", ""]
        for old, new in sorted(drift.changed, key=lambda pair: key(pair[1])):
            before, after = observable_text(old), observable_text(new)
            index, line, column = first_divergence(before, after) or (0, 1, 1)
            parts.append(f"### {_title(new)}")
            parts.append(f"First difference at line {line}, column {column} (character {index}):")
            parts.append(_fence(f"- {before.splitlines()[line - 1] if line <= len(before.splitlines()) else ''}\n"
                                f"+ {after.splitlines()[line - 1] if line <= len(after.splitlines()) else ''}", "diff"))
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
