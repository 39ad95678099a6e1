"""A tokens block presented: each answer's tokens shaded by the scoring model's rank (CSS-only top 3), and claim values."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from ..core.models import ModelSpec
from ..core.protocol import GenerateOutcome
from ..core.ranking import RANK_CAP, RankOutcome
from ..plan.blocks import Block
from ..plan.evaluate import Item

ALL = "all"
CLASSES = ("unshifted", "marginal", "shifted")  # rank 1; rank 2-3; rank above 3 (Lin et al., 2023)


def shift(rank: int) -> str:
    return CLASSES[0] if rank == 1 else CLASSES[1] if rank <= 3 else CLASSES[2]


@dataclass(frozen=True)
class Scored:
    """One answer with its scores (None when this build has no score for it) and the answer it scored."""

    item: Item
    answer: GenerateOutcome | None
    scores: RankOutcome | None


def scored(
    block: Block, generated: dict[str, GenerateOutcome], ranks: dict[str, RankOutcome], models: dict[str, ModelSpec]
) -> list[Scored]:
    """Each item's answer and its scores, found again by the rank job's key (so the answer and the scores agree)."""
    from ..plan.tokens import rank_jobs

    jobs = {job.item.id: job.key for job in rank_jobs(block, generated, models[block.view.under], 1.0)}
    return [
        Scored(item, generated.get(key), ranks.get(jobs.get(item.id, "")))
        for item, key in zip(block.view.items, block.view.keys)
    ]


class Shifts:
    """What claims read of a tokens block `s`: `s.positions(kind="all")`, `s.count("shifted", kind)`,
    `s.share("unshifted", kind)`, `s.not_top(kind)` (share of positions where the answer's token is not the scoring
    model's first choice), `s.first_not_top(kind)` (the same over first tokens only), `s.answers(kind)`, `s.retokenized()`, `s.same_input()`, `s.kinds`."""

    def __init__(self, where: str, rows: list[Scored], unavailable: str = "") -> None:
        self._where, self._rows, self.unavailable = where, rows, unavailable
        self.kinds = list(dict.fromkeys(r.item.kind for r in rows))

    def _chosen(self, kind: str) -> list[Scored]:
        if kind != ALL and kind not in self.kinds:
            raise ValueError(
                f'the tokens block at {self._where} has no kind {kind!r} (its kinds: {", ".join(self.kinds)}, or "all")'
            )
        return [r for r in self._rows if kind in (ALL, r.item.kind) and r.scores and r.scores.status == "ok"]

    def _ranks(self, kind: str) -> list[int]:
        return [int(p["rank"]) for r in self._chosen(kind) if r.scores for p in r.scores.positions]

    def answers(self, kind: str = ALL) -> int:
        return len(self._chosen(kind))

    def positions(self, kind: str = ALL) -> int:
        return len(self._ranks(kind))

    def count(self, name: str, kind: str = ALL) -> int:
        if name not in CLASSES:
            raise ValueError(f"{name!r} is not one of {', '.join(CLASSES)}")
        return sum(shift(rank) == name for rank in self._ranks(kind))

    def share(self, name: str, kind: str = ALL) -> float:
        return self.count(name, kind) / max(1, self.positions(kind))

    def not_top(self, kind: str = ALL) -> float:
        return 1 - self.share(CLASSES[0], kind)

    def first_not_top(self, kind: str = ALL) -> float:
        """Share of answers whose first token is not the scoring model's first choice."""
        firsts = [int(r.scores.positions[0]["rank"]) for r in self._chosen(kind) if r.scores and r.scores.positions]
        return sum(rank > 1 for rank in firsts) / max(1, len(firsts))

    def retokenized(self) -> int:
        """Answers whose text, tokenized again, has exactly as many tokens as the model generated."""
        return sum(
            r.answer is not None and r.scores is not None and r.scores.new_tokens == r.answer.new_tokens
            for r in self._chosen(ALL)
        )

    def same_input(self) -> int:
        """Answers scored on exactly the input (decoded tokens) the answering model received."""
        return sum(
            r.answer is not None and r.scores is not None and r.scores.input_text == r.answer.input_text
            for r in self._chosen(ALL)
        )

    def __repr__(self) -> str:
        return f"<tokens block {self._where}: {self.answers()} answers, {self.positions()} positions>"


def shifts(block: Block, rows: list[Scored]) -> Shifts:
    missing = next((r for r in rows if not (r.scores and r.scores.status == "ok")), None)
    reason = ""
    if missing:
        why = missing.scores.status if missing.scores else "its answer is not in this build"
        reason = f"the {block.view.answers} answer to {missing.item.id} has no token scores in this build ({why})"
    return Shifts(block.where, rows, reason)


def html(block: Block, rows: list[Scored], models: dict[str, ModelSpec]) -> str:
    """The legend and per kind the first `show` answers, each token a focusable span whose shade is its class; hovering
    or focusing it shows the scoring model's rank and probability of it and its top 3 there (CSS only, escaped)."""
    view, counts = block.view, shifts(block, rows)
    under = models[view.under].artifact if view.under in models else view.under
    parts = [
        f'<div class="llmx-result llmx-tokens"><p class="llmx-caption">{escape(view.answers)} answers, each token '
        f"shaded by the rank the {escape(view.under)} model ({escape(under)}) gives it there, given the same input "
        "and the answer's earlier tokens. Hover or focus a token (Tab) for that model's top 3.</p>",
        '<p class="llmx-tok-legend">'
        + "".join(
            f'<span class="llmx-tok llmx-tok-{name}">{label}</span> '
            for name, label in zip(CLASSES, ("rank 1: its first choice too", "rank 2-3", "rank above 3: shifted"))
        )
        + "</p>",
    ]
    parts.append(table(counts, view.under))
    if counts.unavailable:
        parts.append(f'<p class="llmx-empty">{escape(counts.unavailable)}</p>')
    for kind in counts.kinds:
        shown = [r for r in rows if r.item.kind == kind and r.scores and r.scores.status == "ok"][: view.show]
        total = counts.positions(kind)
        parts.append(
            f'<details class="llmx-tok-kind"><summary>{escape(kind)}: {counts.count("unshifted", kind)} of '
            f"{total} tokens are the {escape(view.under)} model's first choice</summary>"
        )
        parts += [answer(r) for r in shown]
        parts.append("</details>")
    parts.append("</div>")
    return "".join(parts)


def table(counts: Shifts, under: str) -> str:
    """Per kind and over all answers: positions, and the share in each class."""
    head = "".join(
        f'<th scope="col">{name}</th>'
        for name in ("kind", "answers", "tokens", *CLASSES, f"not {under}'s first choice")
    )
    body = "".join(
        f'<tr><th scope="row">{escape(kind)}</th><td>{counts.answers(kind)}</td><td>{counts.positions(kind)}</td>'
        + "".join(f"<td>{counts.share(name, kind):.0%}</td>" for name in CLASSES)
        + f"<td>{counts.not_top(kind):.0%}</td></tr>"
        for kind in [*counts.kinds, ALL]
    )
    return (
        f'<table class="llmx-eval-table llmx-tok-table"><caption>Share of the answers\' tokens by the {escape(under)} '
        "model's rank of each: 1 (unshifted), 2-3 (marginal), above 3 (shifted); the end-of-turn marker that closes "
        f"an answer counts as a token.</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def answer(row: Scored) -> str:
    item, scores = row.item, row.scores
    asked = " / ".join(f"{role}: {content}" for role, content in item.messages)
    spans = "".join(token(p) for p in (scores.positions if scores else ()))
    return (
        f'<div class="llmx-tok-answer"><div class="llmx-label">{escape(item.id)}: {escape(asked)}</div>'
        f'<p class="llmx-tok-text">{spans}</p></div>'
    )


def token(position: dict) -> str:
    """One token: visible text (whitespace made visible where it is all there is), and its top 3 in a tip."""
    text, rank, p = str(position["token"]), int(position["rank"]), float(position["p"])
    shown = text if text.strip() else text.replace("\n", "↵").replace(" ", "·") or "∅"
    top = "".join(
        f'<span class="llmx-tok-top">{n}. {escape(_visible(t))} ({_p(float(q))})</span>'
        for n, (t, q) in enumerate(position["top"], 1)
    )
    return (
        f'<span class="llmx-tok llmx-tok-{shift(rank)}" tabindex="0">{escape(shown)}'
        f'<span class="llmx-tok-tip" role="tooltip">rank {rank if rank <= RANK_CAP else f"above {RANK_CAP}"}, '
        f"p = {_p(p)}{top}</span></span>" + ("<br>" if "\n" in text else "")
    )


def _p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def _visible(text: str) -> str:
    return repr(text)[1:-1] if not text.strip() or text != text.strip() else text
