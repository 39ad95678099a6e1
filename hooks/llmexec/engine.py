"""Per page: find blocks, key them, take results from the store or the runner, and rewrite the Markdown."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import notebooks, render
from . import report as drift_report
from .cache import atomic_write
from . import checkpoints, claims, entries, evidence, since
from .blocks import Block, Problem, fence_for, find_blocks
from .cache import ResultCache
from .config import Settings
from .executor import RunnerFactory
from .keys import code_keys, generate_key
from .protocol import CodeOutcome, CodeRequest, GenerateOutcome, GenerateRequest, Runner, from_json, to_json
from .entries import Job
from .store import LOCK_COMMAND, Store

OUTPUT_FENCE = "llmx-output"

_FIXES = {
    "error": "fix the code (the traceback gives the line), or drop `exec` to show the block without running it",
    "timeout": "make it faster, or raise the limit: timeout=SECONDS on the fence, or extra.llm_exec.timeout in mkdocs.yml",
    "crashed": "the process running the block died; look for os._exit, a native crash or memory use in the snippet",
    "memory": "use less memory (smaller pieces, `del` what is done with), or raise the limit: "
              "extra.llm_exec.memory_limit (GB) in mkdocs.yml",
}
_STATUS = {"error": "raised an exception", "timeout": "ran past its time limit", "memory": "ran past its memory limit",
           "crashed": "crashed"}


@dataclass
class Stats:
    executed: int = 0
    cached: int = 0
    failed: int = 0
    unexecuted: int = 0
    claims: int = 0
    failed_claims: int = 0
    loading: float = 0.0  # seconds, measured around runner calls
    generation: float = 0.0
    code: float = 0.0


class Engine:
    """Lives as long as the MkDocs process, so the runner (and its loaded models) survives `serve` rebuilds."""

    def __init__(self, settings: Settings, project_dir: Path, factory: RunnerFactory,
                 report: Callable[[str], None], progress: Callable[[str], None], titles: bool = True) -> None:
        self.settings, self.project_dir, self.factory = settings, project_dir, factory
        self.report, self.progress, self.titles = report, progress, titles
        self.rendered: dict[str, str] = {}
        self.fresh: dict[str, dict[str, Any]] = {}  # outcomes executed by prefetch() in this build, failures too
        self.preview_only: set[str] = set()  # "where#role" executed by a preview build: shown marked, never stored
        self.stats = Stats()
        self.store = self._new_store()
        self._runner: Runner | None = None
        self._started = time.perf_counter()

    @property
    def runner(self) -> Runner:
        """Created on the first miss: a build with nothing to execute never starts it (nor imports torch)."""
        if self._runner is None:
            self._runner = self.factory(self.settings, self.progress)
        return self._runner

    def begin_build(self) -> None:
        self.rendered.clear()
        self.fresh.clear()
        self.preview_only.clear()
        self.stats = Stats()
        self.store = self._new_store()
        self._started = time.perf_counter()
        if self._runner is not None:
            self._runner.begin_build()

    def _new_store(self) -> Store:
        s = self.settings
        only = since.changed_keys(s.lockfile, s.since) if s.mode == "verify" and s.since else None
        if only is not None:
            self.progress(f"verify: {len(only)} lockfile entr{'y' if len(only) == 1 else 'ies'} added or changed since "
                          f"{s.since}; only their blocks (and the code blocks they depend on) are re-executed")
        return Store(s.mode, ResultCache(s.lockfile), ResultCache(s.cache_dir / "results"), self.progress, self.report,
                     only=only, preview_execute=s.preview_execute)

    def end_build(self, *, dirty: bool) -> int:
        """Write the drift report (verify, preview), fail on drift (verify), prune the lockfile after a complete build."""
        drift = self.store.drift
        if self.settings.mode in ("verify", "preview"):
            atomic_write(self.settings.report, drift_report.render(drift, self.settings.mode))
            self.progress(f"drift report written to {self.settings.report}")
        if self.settings.mode == "verify" and (drift.changed or drift.new):
            self.report(f"{len(drift.changed)} block(s) differ from the lockfile and {len(drift.new)} have no entry; "
                        f"see {self.settings.report}\n  --> if the new outputs are right: {LOCK_COMMAND}")
        elif self.settings.mode == "verify":
            self.progress(f"verify: all {len(drift.matched)} re-executed block(s) reproduced their lockfile entries")
        return self.store.finish(complete=not dirty and self.stats.failed == 0)

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    def summary(self) -> str:
        s = self.stats
        total = time.perf_counter() - self._started
        rest = max(0.0, total - s.loading - s.generation - s.code)
        extra = f", {s.unexecuted} not executed ({self.settings.mode} mode)" if s.unexecuted else ""
        checked = f"; {s.claims} claims checked, {s.failed_claims} false or broken" if s.claims else ""
        return (f"{s.executed} blocks executed, {s.cached} from cache, {s.failed} failed{extra}{checked}; "
                f"time: loading models {s.loading:.1f} s, generation {s.generation:.1f} s, code {s.code:.1f} s, "
                f"the rest {rest:.1f} s")

    def prefetch(self, pages: list[tuple[str, str, int]]) -> None:
        """Before any page renders: run every missing generation of the whole site in batches."""
        if not self.store.may_execute:
            return
        jobs: dict[str, Job] = {}
        for page, markdown, offset in pages:
            items = find_blocks(markdown, page=page, line_offset=offset, project_dir=self.project_dir,
                                roles=tuple(self.settings.models))
            for job in self.generate_jobs([b for b in items if isinstance(b, Block) and b.kind == "generate"]):
                if job.key not in jobs and self.store.lookup(job.key) is None:
                    jobs[job.key] = job
        if jobs:
            for job, outcome in zip(jobs.values(), self.execute_generate(list(jobs.values()))):
                self.fresh[job.key] = to_json(outcome)

    def process_page(self, markdown: str, *, page: str, line_offset: int = 0) -> str:
        items = find_blocks(markdown, page=page, line_offset=line_offset, project_dir=self.project_dir,
                            roles=tuple(self.settings.models))
        found = claims.find_claims(markdown, page=page, line_offset=line_offset)
        if not items and not found:
            return markdown
        blocks = [b for b in items if isinstance(b, Block)]
        code = [b for b in blocks if b.kind == "code"]
        html: dict[int, str | list[str]] = {}  # HTML for an output fence, or Markdown lines put in the page
        results: dict[str, Any] = {}  # what claims read, by block id
        for block, outcome in zip(code, self._run_code(page, code)):
            if block.name:
                results[block.name] = evidence.ran(outcome)
            if outcome.status == "ok" and block.output == "markdown":
                html[block.line] = [block.indent + line if line else "" for line in outcome.output.split("\n")]
            else:
                html[block.line] = self._code_html(block, outcome)
            if f"{block.where}#" in self.preview_only:
                out = html[block.line]
                html[block.line] = (render.preview_only() + out if isinstance(out, str)
                                    else [block.indent + render.preview_only(), "", *out])
        for block, columns in self._run_generate([b for b in blocks if b.kind == "generate"]):
            html[block.line] = render.generation(columns)
            if block.name:
                results[block.name] = evidence.generated(block.where, [(spec.role, o, limit) for spec, o, limit, _ in columns])
        for block in blocks:
            if block.name:
                out, target = html[block.line], render.anchor(block.name)
                html[block.line] = (f'<span id="{target}"></span>' + out if isinstance(out, str)
                                    else [f'{block.indent}<span id="{target}"></span>', "", *out])
        markdown = self.check_claims(markdown, found, results, {b.name: b.where for b in blocks if b.name})
        lines = markdown.split("\n")
        for item in reversed(items):
            if isinstance(item, Problem):
                self.stats.failed += 1
                self.report(item.message())
                lines[item.start:item.end] = self._output_lines(item.indent, render.failure("Cannot run this block", item.message()))
            else:
                shown = self._source_lines(item) if item.kind == "code" and item.show_source else []
                out = html[item.line]
                lines[item.start:item.end] = shown + (out if isinstance(out, list) else self._output_lines(item.indent, out))
        return "\n".join(lines)

    # -- execution ---------------------------------------------------------------------------------

    def _run_code(self, page: str, blocks: list[Block]) -> list[CodeOutcome]:
        if not blocks:
            return []
        keys = code_keys(blocks, self.settings.models)
        hits = [self.store.lookup(key) for key in keys]
        if all(hit is not None for hit in hits):
            self.stats.cached += len(blocks)
            return [from_json(CodeOutcome, hit) for hit in hits if hit is not None]
        if not self.store.may_execute:
            return [from_json(CodeOutcome, hit) if hit is not None else
                    self._unexecuted(key, entries.code(b, i, None, self.settings.models, {}))
                    for i, (b, key, hit) in enumerate(zip(blocks, keys, hits))]
        preview = self.settings.mode == "preview"  # untrusted code: its state is never pickled nor restored
        resume = 0 if preview else self._resume_point(keys, hits)
        self.progress(f"{page}: running {len(blocks) - resume} code block(s)"
                      + (f" from block {resume + 1}, the state before it restored" if resume else ""))
        requests = [CodeRequest(b.source, b.filename, b.first_line, b.timeout or self.settings.timeout, b.cell,
                                "" if preview else key) for b, key in zip(blocks, keys)]
        outcomes = self._timed("code", lambda: self.runner.run_code(page, requests, resume), CodeOutcome)
        restored = sum(1 for o in outcomes if o.status == "restored")
        self.stats.cached += restored
        outcomes = [from_json(CodeOutcome, hits[i]) if o.status == "restored" else o  # type: ignore[arg-type]
                    for i, o in enumerate(outcomes)]
        first_failure = next((b for b, o in zip(blocks, outcomes) if o.status != "ok"), None)
        while len(outcomes) < len(blocks):
            where = first_failure.where if first_failure else "an earlier block"
            outcomes.append(CodeOutcome(status="skipped", error=f"not run: the block at {where} failed, and "
                                                                 "later blocks on a page depend on the earlier ones"))
        for index, (block, key, outcome) in enumerate(zip(blocks, keys, outcomes)):
            if index >= restored:
                self._record(key, entries.code(block, index, outcome, self.settings.models, self._versions(),
                                               self._machine(), self._weights()))
        return outcomes

    def _resume_point(self, keys: list[str], hits: list[dict[str, Any] | None]) -> int:
        """How many leading blocks need not run: all cached, and the state after the last of them checkpointed."""
        for k in range(len(keys) - 1, 0, -1):
            if all(hit is not None for hit in hits[:k]) and checkpoints.path(self.settings.states_dir, keys[k - 1]).is_file():
                return k
        return 0

    def _run_generate(self, blocks: list[Block]) -> list[tuple[Block, list[tuple[Any, GenerateOutcome, int, bool]]]]:
        jobs = self.generate_jobs(blocks)
        found = {job.key: self.fresh.get(job.key) or self.store.lookup(job.key) for job in jobs}
        misses = list({job.key: job for job in jobs if found[job.key] is None}.values())
        self.stats.cached += sum(1 for job in jobs if job.key not in self.fresh) - len(misses)
        if misses and not self.store.may_execute:
            for job in misses:
                found[job.key] = to_json(self._unexecuted(job.key, entries.generate(job, None, self.settings.models, {})))
        elif misses:
            for job, outcome in zip(misses, self.execute_generate(misses)):
                found[job.key] = to_json(outcome)
        return [(block, [(self.settings.models[j.role], from_json(GenerateOutcome, found[j.key]), j.limit,  # type: ignore[arg-type]
                          f"{block.where}#{j.role}" in self.preview_only) for j in jobs if j.block is block])
                for block in blocks]

    def generate_jobs(self, blocks: list[Block]) -> list[Job]:
        jobs = []
        for index, block in enumerate(blocks):
            limit = block.max_new_tokens or self.settings.max_new_tokens
            for role in block.models:
                jobs.append(Job(block, role, generate_key(block, self.settings.models[role], limit), limit, index))
        return jobs

    def execute_generate(self, jobs: list[Job]) -> list[GenerateOutcome]:
        """Run generation jobs, record successes, report failures. Jobs are sent grouped by model and
        length, so the worker can batch them; outcomes come back in the caller's order."""
        self.progress(f"generating {len(jobs)} answer(s) for {len({(j.block.page, j.block.line) for j in jobs})} block(s)")
        order = sorted(range(len(jobs)), key=lambda i: (jobs[i].role, jobs[i].limit))
        requests = [GenerateRequest(j.role, j.block.source, j.block.system, j.block.template, j.limit,
                                    j.block.timeout or self.settings.timeout, j.block.prefill, j.block.stop,
                                    j.block.seed, j.block.temperature, j.block.top_p, j.block.generation_prompt)
                    for j in (jobs[i] for i in order)]
        sent = self._timed("generation", lambda: self.runner.generate(requests), GenerateOutcome)
        sent += [GenerateOutcome(status="skipped", error="not run")] * (len(jobs) - len(sent))
        outcomes: list[GenerateOutcome] = [sent[0]] * len(jobs)
        for position, index in enumerate(order):
            outcomes[index] = sent[position]
        for job, outcome in zip(jobs, outcomes):
            self._record(job.key, entries.generate(job, outcome, self.settings.models, self._versions(), self._machine(),
                                                   self._weights()))
            if outcome.status != "ok":
                self.report(f"{job.block.where}: generate block failed on the {job.role} model: "
                            f"{outcome.error}\n  --> {_FIXES.get(outcome.status, 'see the message above')}")
        return outcomes

    def _timed(self, kind: str, call: Callable[[], list[Any]], outcome_type: type) -> list[Any]:
        """The runner boundary: whatever it raises becomes a failed outcome with the message, not a traceback.
        Also splits the wall time between model loading and `kind`."""
        started, loaded = time.perf_counter(), getattr(self.runner, "load_seconds", 0.0)
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - reported on the page and in the log
            self.close()
            return [outcome_type(status="crashed", error=str(exc) or type(exc).__name__)]
        finally:
            loading = getattr(self._runner, "load_seconds", loaded) - loaded
            self.stats.loading += loading
            setattr(self.stats, kind, getattr(self.stats, kind) + time.perf_counter() - started - loading)

    def _versions(self) -> dict[str, str]:
        return dict(getattr(self._runner, "versions", {}) or {})

    def _machine(self) -> dict[str, Any]:
        return dict(getattr(self._runner, "machine", {}) or {})

    def _weights(self) -> dict[str, str]:
        return dict(getattr(self._runner, "weights", {}) or {})

    def _unexecuted(self, key: str, entry: dict[str, Any]) -> Any:
        where = entry["where"]
        self.store.not_executed(key, entry)
        if self.settings.mode == "preview":
            self.stats.unexecuted += 1
            self.progress(f"{where}: not executed in preview mode (its inputs changed)")
        else:
            self.stats.failed += 1
            self.report(f"{where}: no lockfile entry matches this block, and {self.settings.mode} mode never executes\n"
                        f"  --> update the lockfile: {LOCK_COMMAND}")
        outcome_type = CodeOutcome if entry["kind"] == "code" else GenerateOutcome
        return outcome_type(status="unexecuted", error=where)

    def _record(self, key: str, entry: dict[str, Any]) -> None:
        outcome = entry["outcome"]
        if outcome["status"] == "ok":
            verdict = self.store.record(key, entry)  # only successes are stored
            self.stats.executed += 1
            if verdict == "changed":
                old = self.store.locked_entry(key) or {}
                path = self.store.lock.path(key)
                self.report(drift_report.mismatch(old, entry, f"{path.parent.name}/{path.name}"))
            elif verdict == "new" and self.settings.mode == "preview":
                self.preview_only.add(f"{entry['where']}#{entry['role']}")
        elif outcome["status"] != "skipped":
            self.stats.failed += 1

    def check_claims(self, markdown: str, found: list[claims.Claim], results: dict[str, Any],
                     wheres: dict[str, str]) -> str:
        """Evaluate each claim over the page's results and put its sentence back with its mark (line count kept).
        A false claim or a broken check is an error (fails --strict; under serve the page shows it)."""
        for claim in reversed(found):
            verdict = claims.evaluate(claim, results)
            self.stats.claims += 1
            if verdict.state in ("false", "error"):
                self.stats.failed_claims += 1
                self.report(claims.message(claim, verdict, wheres))
                self.store.drift.claims.append((claim.where, " ".join(claim.sentence.split()), claim.expression,
                                                verdict.detail))
            elif verdict.state == "unchecked":
                self.progress(f"{claim.where}: claim not checked: {verdict.detail}")
            names = [n for n in claim.names() if n in wheres]
            mark = render.claim(claim.sentence, claim.expression, verdict.state, verdict.detail,
                                render.anchor(names[0]) if names else "")
            markdown = markdown[:claim.start] + mark + markdown[claim.end:]
        return markdown

    # -- rendering ---------------------------------------------------------------------------------

    def process_notebook(self, path: Path, page: str) -> Path:
        """Run a notebook's code cells like a page's code blocks, check the claims in its Markdown cells;
        return the copy with outputs to render."""
        notebook = notebooks.load(path, page)
        blocks = notebooks.code_blocks(notebook, page)
        outcomes = self._run_code(page, blocks)
        for block, outcome in zip(blocks, outcomes):
            self._report_failure(block, outcome)
        results = {b.name: evidence.ran(o) for b, o in zip(blocks, outcomes) if b.name}
        wheres = {b.name: b.where for b in blocks if b.name}
        checked = notebooks.with_claims(notebook, page, lambda text, cell: self.check_claims(
            text, claims.find_claims(text, page=page, line_offset=0, cell=cell), results, wheres))
        target = self.settings.cache_dir / "notebooks" / page
        preview = {b.line for b in blocks if f"{b.where}#" in self.preview_only}
        atomic_write(target, json.dumps(notebooks.with_outputs(checked, blocks, outcomes, self.settings.models, preview),
                                        indent=1))
        return target

    def _report_failure(self, block: Block, outcome: CodeOutcome) -> None:
        if outcome.status in _STATUS:
            message = f"{block.where}: code {'cell' if block.cell else 'block'} {_STATUS[outcome.status]}\n{_indent(outcome.error)}"
            self.report(f"{message}\n  --> {_FIXES[outcome.status]}")

    def _code_html(self, block: Block, outcome: CodeOutcome) -> str:
        if outcome.status == "ok" and block.output == "html":
            return render.trusted_html(outcome.output)
        if outcome.status == "ok":
            return render.code_output(outcome, self.settings.models)
        if outcome.status == "skipped":
            return render.skipped(outcome.error)
        if outcome.status == "unexecuted":
            return render.unexecuted(outcome.error) if self.settings.mode == "preview" else render.failure(
                "No lockfile entry", f"{outcome.error}: {self.settings.mode} mode never executes; {LOCK_COMMAND}")
        self._report_failure(block, outcome)
        return render.failure(f"This block {_STATUS[outcome.status]} ({block.where})", outcome.error, outcome.output)

    def _source_lines(self, block: Block) -> list[str]:
        fence = fence_for(block.source)
        title = f' title="{block.title.replace(chr(34), "")}"' if block.title and self.titles else ""
        body = [block.indent + line if line else "" for line in block.source.split("\n")]
        return [f"{block.indent}{fence}python{title}", *body, f"{block.indent}{fence}", ""]

    def _output_lines(self, indent: str, html: str) -> list[str]:
        ident = f"llmx-{len(self.rendered)}"
        self.rendered[ident] = html
        return [f"{indent}```{OUTPUT_FENCE}", f"{indent}{ident}", f"{indent}```"]

    def format_fence(self, source: str, *_: Any, **__: Any) -> str:
        """The superfences formatter for output fences: hands back the HTML rendered for that id."""
        return self.rendered.get(source.strip(), render.failure("Output missing", f"no output recorded for {source.strip()!r}"))


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
