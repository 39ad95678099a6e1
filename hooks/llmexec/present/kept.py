"""A page's presented Markdown kept across `serve` rebuilds while its plan and all it shows are unchanged."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..core.protocol import CodeOutcome, GenerateOutcome
from ..plan.page import PagePlan
from .page import Checked, Context, Place, page

if TYPE_CHECKING:  # tokens pages only
    from ..core.ranking import RankOutcome

_MARK = "\x00llmx-output\x00"  # where an output goes, in a kept page's Markdown; placed anew each build
_MARKED = re.compile(f"{_MARK}(\\d+){_MARK}")


class KeptPages:
    """Each page's Markdown with its outputs as markers, and the outputs (indent, HTML) the markers stand for."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[PagePlan, tuple, str, tuple[tuple[str, str], ...], Checked]] = {}
        self.rendered = 0  # pages presented in this build (the others reused their Markdown from the build before)

    def present(
        self,
        plan: PagePlan,
        code: list[CodeOutcome],
        generated: dict[str, GenerateOutcome],
        scored: dict[str, RankOutcome],
        context: Context,
    ) -> tuple[str, tuple[tuple[str, str], ...], Checked]:
        """The page's marked Markdown, its outputs and its checked claims: kept, or presented anew."""
        inputs = (code, generated, scored, context)
        kept = self.pages.get(plan.page)
        if kept is None or kept[0] is not plan or kept[1] != inputs:  # the same plan object: the same text and files
            placed: list[tuple[str, str]] = []

            def mark(indent: str, html: str) -> list[str]:
                placed.append((indent, html))
                return [f"{_MARK}{len(placed) - 1}{_MARK}"]

            text, checked = page(plan, code, generated, context, mark, scored)
            kept = self.pages[plan.page] = (plan, inputs, text, tuple(placed), checked)
            self.rendered += 1
        return kept[2], kept[3], kept[4]


def placed(text: str, outputs: tuple[tuple[str, str], ...], place: Place) -> str:
    """The marked Markdown with each output put in by the renderer's `place`, in the order presenting placed them."""
    lines = [place(indent, html) for indent, html in outputs]
    return _MARKED.sub(lambda found: "\n".join(lines[int(found.group(1))]), text)
