"""A page's plan kept across `serve` rebuilds: planned again only when its text or a file it read changed."""

from __future__ import annotations

from pathlib import Path

from ..core.settings import Settings
from .blocks import Block, Problem
from .page import PagePlan, plan_page


class KeptPlans:
    """Each page's plan, with the text of each file it read (snippets, evaluation sets), compared by content."""

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = project_dir
        self.plans: dict[tuple[str, str, int], tuple[PagePlan, tuple[tuple[Path, str | None], ...]]] = {}
        self.planned = 0  # pages parsed in this build (the others reused their plan from the build before)

    def plan(self, markdown: str, *, page: str, line_offset: int, settings: Settings) -> PagePlan:
        """A page is parsed once per build (prefetch and rendering share the plan), and under `serve` only when its
        text, or a file it read, changed since the build before (compared by content, never by mtime)."""
        key = (page, markdown, line_offset)
        kept = self.plans.get(key)
        if kept is None or any(_text(path) != text for path, text in kept[1]):
            plan = plan_page(
                markdown, page=page, line_offset=line_offset, project_dir=self.project_dir, settings=settings
            )
            self.planned += 1
            for old in [k for k in self.plans if k[0] == page]:
                del self.plans[old]  # one plan a page: the text edited under `serve` does not pile up
            kept = (plan, tuple((path, _text(path)) for path in self._read_by(plan)))
            if not any(isinstance(item, Problem) for item in plan.items):  # a missing file may appear: plan again
                self.plans[key] = kept
        return kept[0]

    def _read_by(self, plan: PagePlan) -> list[Path]:
        """The files planning a page read: file= of code and evaluate blocks, scorers= of evaluate blocks."""
        names = [b.options.get(o) for b in plan.items if isinstance(b, Block) for o in ("file", "scorers")]
        return sorted({(self.project_dir / n).resolve() for n in names if n})


def _text(path: Path) -> str | None:
    """A file's text as planning read it; None when it is missing or unreadable (then planning reports it)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
