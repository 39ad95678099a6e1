"""The engine, renderer-neutral: plan a page, resolve its results, present it; one per renderer process."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from .core.files import atomic_write
from .core.protocol import Runner
from .core.settings import Settings
from .errors import with_fix
from .plan import tokens
from .plan.blocks import Block, Problem
from .plan.claims import find_claims
from .plan.page import PagePlan, plan_notebook, plan_page
from .present import evidence, notebooks
from .present import page as present
from .present import report as drift_report
from .resolve.deferred import Background, Serialized
from .resolve.resolver import Resolver
from .resolve.runner import RunnerFactory
from .vocabulary import LOCK_COMMAND

Place = present.Place
_MARK = "\x00llmx-output\x00"  # where an output goes, in a kept page's Markdown; placed anew each build
_MARKED = re.compile(f"{_MARK}(\\d+){_MARK}")


class Engine:
    """Lives as long as the renderer's process: under `serve` the runner (and its loaded models) is kept across
    rebuilds, and across settings changes that do not change the worker's fingerprint (models, threads)."""

    def __init__(self, settings: Settings, project_dir: Path, factory: RunnerFactory,
                 report: Callable[[str], None], progress: Callable[[str], None], titles: bool = True) -> None:
        self.settings, self.project_dir, self.factory = settings, project_dir, factory
        self.sink, self.progress, self.titles = report, progress, titles  # the sink of errors may be swapped per page
        self._runner: Runner | None = None
        self.background: Background | None = None  # set by the adapter under `serve` (resolve/deferred.py)
        # kept across `serve` rebuilds: a page's plan, and the text of each file it read (snippets, evaluation sets)
        self.plans: dict[tuple[str, str, int], tuple[PagePlan, tuple[tuple[Path, str | None], ...]]] = {}
        self.planned = 0  # pages parsed in this build (the others reused their plan from the build before)
        # a page's presented Markdown (outputs as markers), kept while its plan and everything it showed are unchanged
        self.presented: dict[str, tuple[PagePlan, tuple, str, tuple[tuple[str, str], ...], present.Checked]] = {}
        self.rendered = 0  # pages presented in this build (the others reused their Markdown from the build before)
        self.resolver = Resolver(settings, self._runner_for_build, self.report, progress)

    def report(self, message: str) -> None:
        self.sink(message)

    def reconfigure(self, settings: Settings) -> None:
        """New settings for the next build; the worker is restarted only if what it loaded depends on them."""
        if self._runner is not None and settings.worker_fingerprint() != self.settings.worker_fingerprint():
            self.close()
        if settings != self.settings:
            self.plans.clear()  # plans depend on the models, limits and paths
            self.presented.clear()
        self.settings = settings

    def _runner_for_build(self) -> Runner:
        """Created on the first miss: a build with nothing to execute never starts it (nor imports torch)."""
        if self._runner is None:
            self._runner = Serialized(self.factory(self.settings, self.progress))  # one call at a time
        self._runner.begin_build(self.settings)
        return self._runner

    def begin_build(self) -> None:
        self.planned = self.rendered = 0
        self.resolver = Resolver(self.settings, self._runner_for_build, self.report, self.progress)
        self.resolver.deferred = self.background if self.settings.serve_background else None

    def plan(self, markdown: str, *, page: str, line_offset: int = 0) -> PagePlan:
        """A page is parsed once per build (prefetch and rendering share the plan), and under `serve` only when its
        text, or a file it read, changed since the build before (compared by content, never by mtime)."""
        key = (page, markdown, line_offset)
        kept = self.plans.get(key)
        if kept is None or any(_text(path) != text for path, text in kept[1]):
            plan = plan_page(markdown, page=page, line_offset=line_offset, project_dir=self.project_dir,
                             settings=self.settings)
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

    def prefetch(self, pages: Iterable[tuple[str, str, int]]) -> None:
        """Before any page renders: every missing generation of the whole site, batched across pages."""
        self.resolver.prefetch([self.plan(markdown, page=page, line_offset=offset) for page, markdown, offset in pages])

    def process_page(self, markdown: str, *, page: str, line_offset: int = 0, place: Place) -> str:
        plan = self.plan(markdown, page=page, line_offset=line_offset)
        if not plan.items and not plan.claims:
            return markdown
        code, generated = self.resolver.code(plan), self.resolver.generations(plan)
        scored = self.resolver.ranks([job for block in plan.tokens for job in tokens.rank_jobs(
            block, generated, self.settings.models[block.view.under], self.settings.timeout)]) if plan.tokens else {}
        for problem in (item for item in plan.items if isinstance(item, Problem)):
            self.resolver.recorder.stats.failed += 1
            self.report(problem.message())
        inputs = (code, generated, scored, self._context())
        kept = self.presented.get(page)
        if kept is None or kept[0] is not plan or kept[1] != inputs:  # the same plan object: the same text and files
            placed: list[tuple[str, str]] = []
            def mark(indent: str, html: str) -> list[str]:
                placed.append((indent, html))
                return [f"{_MARK}{len(placed) - 1}{_MARK}"]
            text, checked = present.page(plan, code, generated, inputs[3], mark, scored)
            kept = self.presented[page] = (plan, inputs, text, tuple(placed), checked)
            self.rendered += 1
        self._checked(kept[4])
        lines = [place(indent, html) for indent, html in kept[3]]  # in the order presenting placed them
        return _MARKED.sub(lambda found: "\n".join(lines[int(found.group(1))]), kept[2])

    def process_notebook(self, path: Path, page: str) -> Path:
        """A notebook's code cells run like a page's blocks, the claims of its Markdown cells are checked; the copy
        with outputs (never docs/) is what the renderer shows."""
        plan = plan_notebook(path, page=page, settings=self.settings)
        outcomes = self.resolver.code(plan)
        results = {b.name: evidence.ran(o) for b, o in zip(plan.code, outcomes) if b.name}
        checked = present.Checked()
        with_claims = notebooks.with_claims(plan.notebook, lambda text, cell: present.claims(
            text, find_claims(text, page=page, line_offset=0, cell=cell), results, plan.named, checked)[0])
        self._checked(checked)
        target = self.settings.cache_dir / "notebooks" / page
        context = self._context()
        preview = {b.line for b in plan.code if f"{b.where}#" in context.preview_only}
        atomic_write(target, json.dumps(notebooks.with_outputs(with_claims, list(plan.code), outcomes,
                                                               self.settings.models, preview), indent=1))
        return target

    def _context(self) -> present.Context:
        return present.Context(self.settings.models, self.settings.policy, frozenset(self.resolver.recorder.preview_only),
                               self.titles, dict(self.resolver.store.weights))

    def _checked(self, checked: present.Checked) -> None:
        """Count the claims and report those that fail. A preview only marks them (red, on the page) and lists them
        in its report: the pull request's site is built and published all the same, and the check fails after the
        upload, naming them (.github/preview-build.sh)."""
        stats = self.resolver.recorder.stats
        stats.claims += checked.count
        stats.failed_claims += len(checked.errors)
        for message in checked.errors:
            (self.progress if self.settings.policy.marks_only else self.report)(message)
        for message in checked.unchecked:
            self.progress(message)
        self.resolver.store.drift.claims += checked.failing

    def end_build(self, *, dirty: bool) -> int:
        """Write the drift report (verify, preview), fail on drift (verify), prune the lockfile after a complete build."""
        drift, policy = self.resolver.store.drift, self.settings.policy
        if policy.writes_report:
            atomic_write(self.settings.report, drift_report.render(drift, policy))
            self.progress(f"drift report written to {self.settings.report}")
        if policy.compares and (drift.changed or drift.new):
            self.report(with_fix(f"{len(drift.changed)} block(s) differ from the lockfile and {len(drift.new)} have no "
                                 f"entry; see {self.settings.report}", f"if the new outputs are right: {LOCK_COMMAND}"))
        elif policy.compares:
            self.progress(f"verify: all {len(drift.matched)} re-executed block(s) reproduced their lockfile entries")
        return self.resolver.store.finish(complete=not dirty and self.resolver.recorder.stats.failed == 0)

    def summary(self) -> str:
        return self.resolver.recorder.summary()

    def close(self) -> None:
        if self.background is not None:  # work in flight is dropped; answers already finished are recorded
            self.background.abandon(self.resolver)
        if self._runner is not None:
            self._runner.close()
            self._runner = None


def _text(path: Path) -> str | None:
    """A file's text as planning read it; None when it is missing or unreadable (then planning reports it)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
