"""The engine, renderer-neutral: plan a page, resolve its results, present it; one per renderer process."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .core.files import atomic_write
from .core.protocol import Runner
from .core.settings import Settings
from .errors import with_fix
from .plan.blocks import Problem
from .plan.kept import KeptPlans
from .plan.page import PagePlan, plan_notebook
from .present import page as present
from .present.kept import KeptPages, placed
from .resolve.resolver import Resolver
from .resolve.runner import KeptRunner, RunnerFactory
from .vocabulary import LOCK_COMMAND

if TYPE_CHECKING:  # `serve` only: a build's start-up skips it
    from .resolve.deferred import Background

Place = present.Place


class Engine:
    """Lives as long as the renderer's process: under `serve` the runner (and its loaded models) is kept across
    rebuilds, and across settings changes that do not change the worker's fingerprint (models, threads)."""

    def __init__(
        self,
        settings: Settings,
        project_dir: Path,
        factory: RunnerFactory,
        report: Callable[[str], None],
        progress: Callable[[str], None],
        titles: bool = True,
    ) -> None:
        self.settings, self.project_dir, self.factory = settings, project_dir, factory
        self.sink, self.progress, self.titles = report, progress, titles  # the sink of errors may be swapped per page
        # one call at a time (resolve/deferred.py): under `serve` a background generation shares the worker
        self.runner = KeptRunner(lambda s, p: _serialized(factory(s, p)), progress)
        self.background: Background | None = None  # set by the adapter under `serve` (resolve/deferred.py)
        self.plans = KeptPlans(project_dir)  # a page's plan, kept across `serve` rebuilds
        self.presented = KeptPages()  # a page's Markdown, kept while its plan and everything it showed are unchanged
        self.resolver = Resolver(settings, self._runner_for_build, self.report, progress)

    def report(self, message: str) -> None:
        self.sink(message)

    def reconfigure(self, settings: Settings) -> None:
        """New settings for the next build; the worker is restarted only if what it loaded depends on them."""
        if settings.worker_fingerprint() != self.settings.worker_fingerprint():
            self.close()  # the background's work in flight too
        if settings != self.settings:
            self.plans.plans.clear()  # plans depend on the models, limits and paths
            self.presented.pages.clear()
        self.settings = settings

    def _runner_for_build(self) -> Runner:
        return self.runner.for_build(self.settings)

    def begin_build(self) -> None:
        self.plans.planned = self.presented.rendered = 0
        self.resolver = Resolver(self.settings, self._runner_for_build, self.report, self.progress)
        self.resolver.deferred = self.background if self.settings.serve_background else None
        if self.resolver.deferred is not None:
            self.resolver.deferred.build_started()

    def build_ended(self) -> None:
        """The build has written its pages, or failed: the generations it queued for the background start."""
        if self.resolver.deferred is not None:
            self.resolver.deferred.build_ended()

    def plan(self, markdown: str, *, page: str, line_offset: int = 0) -> PagePlan:
        return self.plans.plan(markdown, page=page, line_offset=line_offset, settings=self.settings)

    def prefetch(self, pages: Iterable[tuple[str, str, int]]) -> None:
        """Before any page renders: every missing generation of the whole site, batched across pages."""
        self.resolver.prefetch([self.plan(markdown, page=page, line_offset=offset) for page, markdown, offset in pages])

    def process_page(self, markdown: str, *, page: str, line_offset: int = 0, place: Place) -> str:
        plan = self.plan(markdown, page=page, line_offset=line_offset)
        if not plan.items and not plan.claims:
            return markdown
        code, generated = self.resolver.code(plan), self.resolver.generations(plan)
        scored = self._scored(plan, generated) if plan.tokens else {}
        for problem in (item for item in plan.items if isinstance(item, Problem)):
            self.resolver.recorder.stats.failed += 1
            self.report(problem.message())
        text, outputs, checked = self.presented.present(plan, code, generated, scored, self._context())
        self._checked(checked)
        return placed(text, outputs, place)

    @property
    def planned(self) -> int:
        """Pages parsed in this build (the others reused their plan from the build before)."""
        return self.plans.planned

    @property
    def rendered(self) -> int:
        """Pages presented in this build (the others reused their Markdown from the build before)."""
        return self.presented.rendered

    def _scored(self, plan: PagePlan, generated: dict) -> dict:
        """The recorded answers a page's tokens blocks show, scored under their other model."""
        from .plan import tokens  # only a page with a tokens fence needs it (a build's start-up skips it)

        models, timeout = self.settings.models, self.settings.timeout
        return self.resolver.ranks(
            [job for b in plan.tokens for job in tokens.rank_jobs(b, generated, models[b.view.under], timeout)]
        )

    def process_notebook(self, path: Path, page: str) -> Path:
        """A notebook's code cells run like a page's blocks, the claims of its Markdown cells are checked; the copy
        with outputs (never docs/) is what the renderer shows."""
        from .present import notebooks  # only a site with notebooks needs it (a build's start-up skips it)

        plan = plan_notebook(path, page=page, settings=self.settings)
        notebook, checked = notebooks.presented(plan, self.resolver.code(plan), self._context())
        self._checked(checked)
        target = self.settings.cache_dir / "notebooks" / page
        atomic_write(target, json.dumps(notebook, indent=1))
        return target

    def _context(self) -> present.Context:
        return present.Context(
            self.settings.models,
            self.settings.policy,
            frozenset(self.resolver.recorder.preview_only),
            self.titles,
            dict(self.resolver.store.weights),
        )

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
        self.build_ended()
        drift, policy = self.resolver.store.drift, self.settings.policy
        if policy.writes_report:
            from .present import report as drift_report  # only the modes that write a report need it

            atomic_write(self.settings.report, drift_report.render(drift, policy))
            self.progress(f"drift report written to {self.settings.report}")
        if policy.compares and (drift.changed or drift.new):
            self.report(
                with_fix(
                    f"{len(drift.changed)} block(s) differ from the lockfile and {len(drift.new)} have no "
                    f"entry; see {self.settings.report}",
                    f"if the new outputs are right: {LOCK_COMMAND}",
                )
            )
        elif policy.compares:
            self.progress(f"verify: all {len(drift.matched)} re-executed block(s) reproduced their lockfile entries")
        return self.resolver.store.finish(complete=not dirty and self.resolver.recorder.stats.failed == 0)

    def summary(self) -> str:
        return self.resolver.recorder.summary()

    def close(self) -> None:
        if self.background is not None:  # work in flight is dropped; answers already finished are recorded
            self.background.abandon(self.resolver)
        self.runner.close()


def _serialized(runner: Runner) -> Runner:
    """The runner that builds and the background share (resolve/deferred.py), loaded with the first runner made:
    a build with nothing to execute never imports it."""
    from .resolve.deferred import Serialized

    return Serialized(runner)
