"""The drift report: a Markdown page (readable as a PR comment) of outputs that changed or could not be run."""

from __future__ import annotations

from typing import Any

from ..core.modes import Policy
from ..plan.blocks import fence_for
from ..resolve.mismatch import observable_text, what, where
from ..resolve.store import Drift
from ..resolve.tolerance import RULE, Difference, compare
from ..vocabulary import LOCK_COMMAND


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
    for new, old, same in sorted(
        rows, key=lambda row: (row[0].get("page", ""), row[0].get("line", 0), row[0].get("role", ""))
    ):
        lines.append(
            f"| `{where(new)}` {what(new)} | {_cell(observable_text(old))} | {_cell(observable_text(new))} "
            f"| {'yes' if same else '**no**'} |"
        )
    return lines + [""]


def _fence(text: str, lang: str = "text") -> str:
    fence = fence_for(text)
    return f"{fence}{lang}\n{text}\n{fence}"


def _title(entry: dict[str, Any]) -> str:
    return f"`{where(entry)}` · {what(entry)}"


def _details(summary: str, text: str) -> str:
    return f"<details><summary>{summary}</summary>\n\n{_fence(text)}\n\n</details>"


def render(drift: Drift, policy: Policy) -> str:
    """The whole report; stable order (page, then position) so two runs over the same change read the same."""
    parts = [f"# Executed outputs: drift report ({policy.mode} build)", ""]
    total = len(drift.changed) + len(drift.new) + len(drift.unexecuted)
    if drift.claims:
        parts += [f"## Sentences these outputs make false ({len(drift.claims)})", ""]
        for where, sentence, check, why in sorted(drift.claims):
            parts.append(f"- `{where}`: {sentence}  \n  check `{check}`" + (f": {why}" if why else ""))
        parts.append("")
    parts += [f"Compared with the tolerance: {RULE} (README, 'Proving the lockfile').", ""]
    if not total:
        parts.append(
            f"Every executed block matches the committed lockfile ({len(drift.matched)} re-executed)."
            if drift.matched or policy.compares
            else "Every block has its lockfile entry."
        )
        return "\n".join(parts + [""] + table(drift)) + "\n"
    parts.append(f"- {len(drift.changed)} block(s) produced a different output than the lockfile")
    parts.append(f"- {len(drift.matched)} block(s) re-executed and reproduced their lockfile entry")
    if policy.marks_only:
        parts.append(f"- {len(drift.new)} block(s) have no lockfile entry and were executed for this preview only")
    else:
        parts.append(f"- {len(drift.new)} block(s) have no lockfile entry")
    parts.append(f"- {len(drift.unexecuted)} block(s) changed inputs and were not executed in this build")
    parts.append("")
    parts += table(drift)

    def key(item: dict[str, Any]) -> tuple[str, int, str]:
        return item.get("page", ""), item.get("line", 0), item.get("role", "")

    if drift.changed:
        parts += ["## Outputs that changed", ""]
        for old, new in sorted(drift.changed, key=lambda pair: key(pair[1])):
            before, after = observable_text(old), observable_text(new)
            found = compare(old, new) or Difference("output", "", "", "")
            parts.append(f"### {_title(new)}")
            parts.append(
                f"First difference at line {found.line}, column {found.column} of {found.field} ({found.why}):"
            )
            parts.append(_fence(f"- {found.before}\n+ {found.after}", "diff"))
            parts.append(_details("Lockfile output", before))
            parts.append(_details("New output", after))
            parts.append("")
    if drift.new:
        parts += ["## Blocks with no lockfile entry", ""]
        for new in sorted(drift.new, key=key):
            parts += [
                f"### {_title(new)}",
                _details("Input", new.get("source", "")),
                _details("New output", observable_text(new)),
                "",
            ]
    if drift.unexecuted:
        parts += ["## Changed inputs, not executed in this build", ""]
        for new, previous in sorted(drift.unexecuted, key=lambda pair: key(pair[0])):
            parts.append(f"### {_title(new)}")
            parts.append(_details("New input", new.get("source", "")))
            if previous:
                parts.append(_details("Previous input (lockfile)", previous.get("source", "")))
                parts.append(_details("Previous output (lockfile)", observable_text(previous)))
            else:
                parts.append("A new block: the lockfile has nothing at this place.")
            parts.append("")
        parts.append(f"To record their outputs, a maintainer runs: `{LOCK_COMMAND}`")
    return "\n".join(parts) + "\n"
