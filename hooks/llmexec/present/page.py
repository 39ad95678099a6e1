"""A page's Markdown with every block replaced by its output and every claim by its checked sentence."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.models import ModelSpec
from ..core.modes import Policy
from ..core.protocol import CodeOutcome, GenerateOutcome
from ..plan.blocks import Block, Problem, fence_for
from ..plan.page import PagePlan
from ..vocabulary import FAILURES
from . import render

if TYPE_CHECKING:  # checks, evaluation and tokens load when a page has claims or such fences (build start-up)
    from ..core.ranking import RankOutcome
    from ..plan.claims import Claim

Place = Callable[[str, str], list[str]]  # (indent, HTML) -> the Markdown lines that put the HTML in the page


@dataclass
class Checked:
    """What the claims of a page came to: the errors to report, and those that fail for the drift report."""

    count: int = 0
    errors: list[str] = field(default_factory=list)
    failing: list[tuple[str, str, str, str]] = field(default_factory=list)  # (where, sentence, check, why)
    unchecked: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Context:
    """What presenting needs besides outcomes: the models (for captions), the mode, and the renderer's options."""

    models: dict[str, ModelSpec]
    policy: Policy
    preview_only: frozenset[str]  # "where#role" executed by a preview build
    titles: bool  # code listings get title="..." (pymdownx.highlight)
    weights: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> {role: sha256 of the tuned weights}


def page(
    plan: PagePlan,
    code: list[CodeOutcome],
    generated: dict[str, GenerateOutcome],
    context: Context,
    place: Place,
    ranks: dict[str, RankOutcome] | None = None,
) -> tuple[str, Checked]:
    html: dict[int, str | list[str]] = {}  # an output as HTML, or as Markdown lines put in the page (output=markdown)
    results: dict[str, Any] = {}  # what claims read, by block id
    scorer_errors: list[str] = []
    claimed = bool(plan.claims)  # what claims read is gathered only for a page that has some
    if claimed:
        from . import evidence  # only a page with claims needs it (a build's start-up skips it)
    for block, key, outcome in zip(plan.code, plan.code_keys, code):
        html[block.line] = _code(block, outcome, context, context.weights.get(key, {}))
        if claimed:
            results[block.name] = evidence.ran(outcome)
    for block in plan.generate:
        mine = [j for j in plan.jobs if not j.item and j.block.line == block.line]
        columns = [
            render.Column(
                context.models[j.role],
                generated[j.key],
                j.limit,
                f"{block.where}#{j.role}" in context.preview_only,
                j.variant,
            )
            for j in mine
        ]
        html[block.line] = render.generation(columns, block.where, context.policy)
        if claimed:
            results[block.name] = evidence.generated(
                block.where, [(c.name or c.spec.role, c.outcome, c.limit) for c in columns]
            )
    for block in plan.evaluate:
        from . import evaluation  # only a page with an evaluate fence needs it

        outcomes = {
            (j.item, j.variant): generated[j.key] for j in plan.jobs if j.variant and j.block.line == block.line
        }
        try:
            rows = evaluation.score_rows(block, outcomes)
        except evaluation.ScorerError as exc:
            html[block.line] = render.failure(f"Cannot score this evaluation ({block.where})", str(exc))
            if claimed:
                results[block.name] = evidence.Ran("", evidence.Notes(), f"its replies cannot be scored: {exc}")
            scorer_errors.append(f"{block.where}: {exc}")
            continue
        preview = any(f"{block.where}#{v.role}" in context.preview_only for v in block.evaluation.variants)
        html[block.line] = (render.preview_only() if preview else "") + evaluation.html(
            block, rows, context.models, context.policy
        )
        results[block.name] = evaluation.evaluated(block, rows)
    for block in plan.tokens:
        from . import tokens  # only a page with a tokens fence needs it

        scored = tokens.scored(block, generated, ranks or {}, context.models)
        preview = f"{block.where}#{block.view.under}" in context.preview_only  # scored by a preview build
        html[block.line] = (render.preview_only() if preview else "") + tokens.html(block, scored, context.models)
        results[block.name] = tokens.shifts(block, scored)
    results.pop("", None)
    for block in (b for b in plan.items if isinstance(b, Block) and b.name):
        out, target = html[block.line], f'<span id="{render.anchor(block.name)}"></span>'
        html[block.line] = target + out if isinstance(out, str) else [block.indent + target, "", *out]
    markdown, checked = claims(plan.markdown, list(plan.claims), results, plan.named)
    checked.errors += scorer_errors
    lines = markdown.split("\n")
    for item in reversed(plan.items):
        if isinstance(item, Problem):
            lines[item.start : item.end] = place(item.indent, render.failure("Cannot run this block", item.message()))
            continue
        shown = _source_lines(item, context.titles) if item.kind == "code" and item.show_source else []
        out = html[item.line]
        lines[item.start : item.end] = shown + (out if isinstance(out, list) else place(item.indent, out))
    return "\n".join(lines), checked


def claims(
    markdown: str, found: list[Claim], results: dict[str, Any], wheres: dict[str, str], checked: Checked | None = None
) -> tuple[str, Checked]:
    """Each claim evaluated and put back as its sentence with a mark; the line count is kept."""
    checked = checked or Checked()
    if not found:
        return markdown, checked
    from . import checks  # only a page with claims needs it

    for claim in reversed(found):
        verdict = checks.evaluate(claim, results)
        checked.count += 1
        if verdict.state in ("false", "error"):
            checked.errors.append(checks.message(claim, verdict, wheres))
            checked.failing.append((claim.where, " ".join(claim.sentence.split()), claim.expression, verdict.detail))
        elif verdict.state == "unchecked":
            checked.unchecked.append(f"{claim.where}: claim not checked: {verdict.detail}")
        names = [n for n in claim.names() if n in wheres]
        mark = render.claim(
            claim.sentence, claim.expression, verdict.state, verdict.detail, render.anchor(names[0]) if names else ""
        )
        markdown = markdown[: claim.start] + mark + markdown[claim.end :]
    return markdown, checked


def _code(block: Block, outcome: CodeOutcome, context: Context, weights: dict[str, str]) -> str | list[str]:
    shown: str | list[str]
    if outcome.status == "ok" and block.output == "markdown":
        shown = [block.indent + line if line else "" for line in outcome.output.split("\n")]
        used = [context.models[r] for r in outcome.models_used if r in context.models]
        if any(weights.get(m.role) for m in used):
            shown += ["", block.indent + render.provenance(used, weights), ""]
    elif outcome.status == "ok":
        shown = (
            render.trusted_html(outcome.output)
            if block.output == "html"
            else render.code_output(outcome, context.models, weights)
        )
    elif outcome.status == "skipped":
        shown = render.skipped(outcome.error)
    elif outcome.status == "unexecuted":
        reason = render.why_not_executed(block.where, context.policy, outcome.error)
        shown = render.unexecuted(reason) if context.policy.marks_only else render.failure("No lockfile entry", reason)
    else:
        shown = render.failure(f"This block {FAILURES[outcome.status]} ({block.where})", outcome.error, outcome.output)
    if f"{block.where}#" in context.preview_only:
        shown = (
            render.preview_only() + shown
            if isinstance(shown, str)
            else [block.indent + render.preview_only(), "", *shown]
        )
    return shown


def _source_lines(block: Block, titles: bool) -> list[str]:
    fence = fence_for(block.source)
    title = f' title="{block.title.replace(chr(34), "")}"' if block.title and titles else ""
    body = [block.indent + line if line else "" for line in block.source.split("\n")]
    return [f"{block.indent}{fence}python{title}", *body, f"{block.indent}{fence}", ""]
