"""An evaluate block presented: recorded replies scored (in this process, no torch), Wilson cells, an SVG, claim values."""

from __future__ import annotations

import importlib.util
import math
import sys
from dataclasses import dataclass
from html import escape
from typing import Any

from ..core.models import ModelSpec
from ..core.modes import Policy
from ..core.protocol import GenerateOutcome
from ..plan.blocks import Block
from ..plan.evaluate import Evaluation, Item
from .render import why_not_executed

ALL = "all"


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% for z = 1.96); inside [0, 1] even at 0/n and n/n."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (0.0 if successes == 0 else centre - half), (1.0 if successes == n else centre + half)


class ScorerError(Exception):
    """The scorers file cannot be loaded or its score() failed on a reply; the message says which and how to fix."""


def load_scorer(evaluation: Evaluation) -> Any:
    """score(item, reply) -> bool from the scorers file, loaded afresh each build: an edit re-scores, runs nothing."""
    path = evaluation.scorers_path
    name = f"llmexec_scorers_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    try:
        if spec is None or spec.loader is None:
            raise ImportError(f"no module loader for {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses in the scorers need their module registered
        spec.loader.exec_module(module)
    except Exception as exc:  # reported with the file named
        raise ScorerError(
            f"the scorers file {evaluation.scorers} cannot be loaded ({type(exc).__name__}: {exc})"
            "\n  --> fix it; it must define score(item, reply) -> bool"
        ) from None
    finally:
        sys.modules.pop(name, None)
    if not callable(getattr(module, "score", None)):
        raise ScorerError(
            f"the scorers file {evaluation.scorers} defines no score(item, reply)"
            "\n  --> add def score(item, reply) -> bool (item has .id .kind .messages .success)"
        )
    return module.score


@dataclass(frozen=True)
class Row:
    """One item on one variant: its reply (None when this build has none) and the verdict."""

    item: Item
    variant: str
    outcome: GenerateOutcome
    success: bool | None


def score_rows(block: Block, outcomes: dict[tuple[str, str], GenerateOutcome]) -> list[Row]:
    score = load_scorer(block.evaluation)
    rows = []
    for item in block.evaluation.items:
        for v in block.evaluation.variants:
            outcome = outcomes[(item.id, v.name)]
            verdict = None
            if outcome.status == "ok":
                try:
                    verdict = bool(score(item, outcome.text))
                except Exception as exc:  # whatever a scorer raises names the scorer and the item
                    raise ScorerError(
                        f"{block.evaluation.scorers}: score() raised {type(exc).__name__}: {exc} on "
                        f"{block.evaluation.file}:{item.line} ({item.id}), {v.name}"
                        "\n  --> fix the scorer so it returns True or False for every reply"
                    ) from None
            rows.append(Row(item, v.name, outcome, verdict))
    return rows


class Evaluated:
    """What claims read of an evaluate block: `heldout.successes("tuned", "refusal")`, `heldout.n("refusal")`,
    `heldout.rate(...)`, `heldout.low(...)`, `heldout.high(...)`, `heldout.stopped(...)`; the kind defaults to "all"."""

    def __init__(
        self, where: str, rows: list[Row], kinds: list[str], variants: list[str], unavailable: str = ""
    ) -> None:
        self._where, self._rows, self.kinds, self.variants, self.unavailable = where, rows, kinds, variants, unavailable

    def _chosen(self, variant: str, kind: str) -> list[Row]:
        if variant not in self.variants:
            raise ValueError(
                f"the evaluate block at {self._where} has no variant {variant!r} (its variants: "
                f"{', '.join(self.variants)})"
            )
        if kind != ALL and kind not in self.kinds:
            raise ValueError(
                f"the evaluate block at {self._where} has no kind {kind!r} (its kinds: "
                f'{", ".join(self.kinds)}, or "all")'
            )
        return [r for r in self._rows if r.variant == variant and kind in (ALL, r.item.kind)]

    def successes(self, variant: str, kind: str = ALL) -> int:
        return sum(bool(r.success) for r in self._chosen(variant, kind))

    def stopped(self, variant: str, kind: str = ALL) -> int:
        """Replies that ended before max_new_tokens: the model's end-of-sequence token or a stop string."""
        return sum(
            r.outcome.finish_reason in ("eos", "stop") for r in self._chosen(variant, kind) if r.success is not None
        )

    def n(self, kind: str = ALL) -> int:
        return len(self._chosen(self.variants[0], kind))

    def rate(self, variant: str, kind: str = ALL) -> float:
        return self.successes(variant, kind) / self.n(kind)

    def low(self, variant: str, kind: str = ALL) -> float:
        return wilson(self.successes(variant, kind), self.n(kind))[0]

    def high(self, variant: str, kind: str = ALL) -> float:
        return wilson(self.successes(variant, kind), self.n(kind))[1]

    def __repr__(self) -> str:
        return f"<evaluate block {self._where}: {', '.join(self.variants)}>"


def evaluated(block: Block, rows: list[Row]) -> Evaluated:
    missing = next((r for r in rows if r.success is None), None)
    reason = (
        f"the {missing.variant} reply to {missing.item.id} is not in this build ({missing.outcome.status})"
        if missing
        else ""
    )
    return Evaluated(block.where, rows, block.evaluation.kinds, [v.name for v in block.evaluation.variants], reason)


def html(block: Block, rows: list[Row], models: dict[str, ModelSpec], policy: Policy) -> str:
    """The table (successes/n and the 95% Wilson interval per kind and variant), the chart and every reply (or why it
    is not in this build, under the mode's `policy`)."""
    ev, counts = block.evaluation, evaluated(block, rows)
    kinds = ev.kinds + [ALL]
    head = "".join(
        f'<th scope="col">{escape(v.name)}<br><span class="llmx-artifact">{escape(v.label)}</span></th>'
        for v in ev.variants
    )
    body = []
    for kind in kinds:
        cells = []
        for v in ev.variants:
            k, n = counts.successes(v.name, kind), counts.n(kind)
            low, high = wilson(k, n)
            cells.append(f'<td>{k}/{n} <span class="llmx-interval">[{low:.2f}, {high:.2f}]</span></td>')
        body.append(f'<tr><th scope="row">{escape(kind)}</th>{"".join(cells)}</tr>')
    sources = "; ".join(f"{v.name}: {models[v.role].artifact}" for v in ev.variants if v.role in models)
    caption = (
        f"{len(ev.items)} requests of {escape(ev.file)}, scored by {escape(ev.scorers)}: successes/n and the "
        f"95% Wilson interval. Greedy decoding, fp32. Models: {escape(sources)}"
    )
    missing = (
        '<p class="llmx-empty">Some replies are not in this build: ' + escape(counts.unavailable) + "</p>"
        if counts.unavailable
        else ""
    )
    table = (
        f'<table class="llmx-eval-table"><caption>{caption}</caption><thead><tr><th scope="col">kind</th>{head}'
        f"</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )
    return (
        f'<div class="llmx-result llmx-evaluation">{missing}{table}{chart(block, counts)}'
        f"{replies(block, rows, policy)}</div>"
    )


def chart(block: Block, counts: Evaluated) -> str:
    """Points with their interval bars, one row per kind and one mark per variant; colours from currentColor and
    CSS classes (both palettes), no JavaScript; a title and a description for screen readers."""
    ev = block.evaluation
    kinds, variants = ev.kinds + [ALL], [v.name for v in ev.variants]
    left, width, row, step = 130, 420, 18 * (len(variants) + 1), 18
    height = 30 + row * len(kinds) + 20

    def x(share: float) -> float:
        return left + share * width

    desc = "; ".join(
        f"{kind}: " + ", ".join(f"{v} {counts.successes(v, kind)}/{counts.n(kind)}" for v in variants) for kind in kinds
    )
    ident = f"llmx-eval-{escape(block.name or str(block.line))}"
    parts = [
        f'<svg class="llmx-eval-chart" viewBox="0 0 {left + width + 20} {height}" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{ident}-t">Success rate per kind and variant, with 95% Wilson intervals</title>',
        f'<desc id="{ident}-d">{escape(desc)}</desc>',
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1):
        parts.append(
            f'<line class="llmx-grid" x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="20" y2="{height - 20}"/>'
            f'<text x="{x(tick):.1f}" y="14" text-anchor="middle">{tick:.0%}</text>'
        )
    for i, kind in enumerate(kinds):
        top = 30 + i * row
        parts.append(f'<text x="{left - 8}" y="{top + row / 2:.1f}" text-anchor="end">{escape(kind)}</text>')
        for j, v in enumerate(variants):
            y = top + (j + 0.5) * step
            k, n = counts.successes(v, kind), counts.n(kind)
            low, high = wilson(k, n)
            parts.append(
                f'<g class="llmx-series-{j}"><title>{escape(v)}, {escape(kind)}: {k}/{n} '
                f'[{low:.2f}, {high:.2f}]</title><line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{y:.1f}" '
                f'y2="{y:.1f}"/>{_mark(j, x(k / n if n else 0), y)}</g>'
            )
    key_y = height - 6
    kx = float(left)
    for j, v in enumerate(variants):
        parts.append(
            f'<g class="llmx-series-{j}">{_mark(j, kx + 5, key_y - 4)}'
            f'<text x="{kx + 14:.1f}" y="{key_y}">{escape(v)}</text></g>'
        )
        kx += 30 + 6.5 * len(v)  # about a character's width at 11px, so labels never run into the next marker
    parts.append("</svg>")
    return "".join(parts)


def _mark(series: int, cx: float, cy: float) -> str:
    """A different shape per variant, so the chart reads without colour too."""
    if series % 2:
        return f'<rect x="{cx - 4:.1f}" y="{cy - 4:.1f}" width="8" height="8"/>'
    return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4.5"/>'


def replies(block: Block, rows: list[Row], policy: Policy) -> str:
    """Every request with each variant's reply (escaped: model output is untrusted) and its verdict, collapsed."""
    parts = [
        f'<details class="llmx-eval-replies"><summary>Every request and reply ({len(block.evaluation.items)} '
        f"requests x {len(block.evaluation.variants)} variants)</summary>"
    ]
    by_item: dict[str, list[Row]] = {}
    for r in rows:
        by_item.setdefault(r.item.id, []).append(r)
    for item_rows in by_item.values():
        item = item_rows[0].item
        asked = " / ".join(f"{role}: {content}" for role, content in item.messages)
        parts.append(
            f'<div class="llmx-eval-item"><div class="llmx-label">{escape(item.id)} ({escape(item.kind)}): '
            f"{escape(asked)}</div><ul>"
        )
        for r in item_rows:
            verdict = {True: "✓ success", False: "✗ failure", None: "not in this build"}[r.success]
            text = (
                r.outcome.text
                if r.outcome.status == "ok"
                else why_not_executed(block.where, policy, r.outcome.error)
                if r.outcome.status == "unexecuted"
                else r.outcome.error
            )
            parts.append(f"<li><strong>{escape(r.variant)}</strong> ({verdict}): <code>{escape(text)}</code></li>")
        parts.append("</ul></div>")
    parts.append("</details>")
    return "".join(parts)
