"""A notebook's copy with this build's outputs and checked claims: what mkdocs-jupyter renders (docs/ is never written)."""

from __future__ import annotations

import json
from collections.abc import Set as AbstractSet
from html import escape
from typing import Any

from ..core.models import ModelSpec
from ..core.modes import Policy
from ..core.protocol import CodeOutcome
from ..plan.blocks import Block
from ..plan.claims import find_claims
from ..plan.page import PagePlan
from ..vocabulary import FIGURE
from . import evidence
from .page import Checked, Context, claims
from .render import PREVIEW_ONLY, unexecuted, why_not_executed

TRUSTED_TAG = "llm-exec:trusted-html"  # a cell tag: its HTML outputs are rendered, not shown as text


def presented(plan: PagePlan, outcomes: list[CodeOutcome], context: Context) -> tuple[dict[str, Any], Checked]:
    """The notebook with its code cells' outputs and its Markdown cells' claims checked; and what the claims came to."""
    results = {b.name: evidence.ran(o) for b, o in zip(plan.code, outcomes) if b.name}
    checked = Checked()
    with_checked = with_claims(
        plan.notebook,
        lambda text, cell: claims(
            text, find_claims(text, page=plan.page, line_offset=0, cell=cell), results, plan.named, checked
        )[0],
    )
    preview = {b.line for b in plan.code if f"{b.where}#" in context.preview_only}
    return with_outputs(with_checked, list(plan.code), outcomes, context.models, context.policy, preview), checked


def with_claims(notebook: dict[str, Any], check: Any) -> dict[str, Any]:
    """A copy whose Markdown cells went through `check(text, where)`: claims replaced by checked sentences."""
    copy = json.loads(json.dumps(notebook))
    for number, cell in enumerate(copy["cells"], 1):
        if cell.get("cell_type") == "markdown":
            source = cell.get("source", "")
            text = "".join(source) if isinstance(source, list) else source
            cell["source"] = check(text, number)
    return copy


def with_outputs(
    notebook: dict[str, Any],
    blocks: list[Block],
    outcomes: list[CodeOutcome],
    models: dict[str, ModelSpec],
    policy: Policy,
    preview: AbstractSet[int] = frozenset(),
) -> dict[str, Any]:
    """A copy of the notebook whose code cells carry the outputs of this build (never written back to docs/); a cell
    not executed says why, under the mode's `policy`."""
    copy = json.loads(json.dumps(notebook))
    by_cell = {block.line: outcome for block, outcome in zip(blocks, outcomes)}
    count = 0
    for number, cell in enumerate(copy["cells"], 1):
        if cell.get("cell_type") != "code":
            continue
        cell["outputs"], cell["execution_count"] = [], None
        outcome = by_cell.get(number)
        if outcome is None:
            continue
        count += 1
        cell["execution_count"] = count
        trusted = TRUSTED_TAG in cell.get("metadata", {}).get("tags", [])
        cell["outputs"] = _outputs(outcome, trusted, models, f"{blocks[0].page}: cell {number}", policy)
        name = next((b.name for b in blocks if b.line == number), "")
        if name:  # where the checked claims about this cell link to
            cell["outputs"].insert(0, _html(f'<span id="llmx-{escape(name)}"></span>'))
        if number in preview:  # executed by a preview build: real, but not in the lockfile yet
            cell["outputs"].insert(0, _html(f'<div class="llmx-preview-only">{escape(PREVIEW_ONLY)}</div>'))
    return copy


def _outputs(
    outcome: CodeOutcome, trusted: bool, models: dict[str, ModelSpec], where: str, policy: Policy
) -> list[dict[str, Any]]:
    outputs: list[dict[str, Any]] = []
    if outcome.output:
        outputs.append({"output_type": "stream", "name": "stdout", "text": outcome.output})
    for bundle in outcome.rich:
        data = {mime: value for mime, value in bundle.items() if mime != FIGURE}  # the figure's data: for verify only
        if "text/html" in data and not trusted:  # untrusted HTML is shown as its source text
            data = {"text/plain": data["text/html"]}
        outputs.append({"output_type": "display_data", "data": data, "metadata": {}})
    if outcome.status == "ok":
        used = [models[r] for r in outcome.models_used if r in models]
        if used:
            caption = "ran with " + "; ".join(f"{m.role} = {m.artifact}" for m in used)
            outputs.append(_html(f'<div class="llmx-caption">{escape(caption)}</div>'))
    elif outcome.status == "unexecuted":
        outputs.append(_html(unexecuted(why_not_executed(where, policy, outcome.error))))
    elif outcome.status == "skipped":
        outputs.append({"output_type": "stream", "name": "stderr", "text": outcome.error + "\n"})
    else:
        lines = outcome.error.splitlines() or [outcome.status]
        outputs.append(
            {"output_type": "error", "ename": outcome.status, "evalue": f"{where}: {lines[-1]}", "traceback": lines}
        )
    return outputs


def _html(markup: str) -> dict[str, Any]:
    return {"output_type": "display_data", "data": {"text/html": markup, "text/plain": ""}, "metadata": {}}


def without_empty_script(html: str) -> str:
    """mkdocs-jupyter emits `<script src="">` when no MathJax URL is set: the browser would fetch the page as a
    script and log an error. The site loads nothing from a CDN, so the tag goes."""
    return html.replace('<script src=""> </script>', "")
