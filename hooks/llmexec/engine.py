"""Per page: find blocks, key them, take results from the cache or the runner, and rewrite the Markdown."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import render
from .blocks import Block, Problem, find_blocks
from .cache import Corrupt, ResultCache
from .config import Settings
from .executor import RunnerFactory
from .keys import code_keys, generate_key
from .protocol import CodeOutcome, CodeRequest, GenerateOutcome, GenerateRequest, Runner, from_json, to_json

OUTPUT_FENCE = "llmx-output"

_FIXES = {
    "error": "fix the code (the traceback gives the line), or drop `exec` to show the block without running it",
    "timeout": "make it faster, or raise the limit: timeout=SECONDS on the fence, or extra.llm_exec.timeout in mkdocs.yml",
    "crashed": "the process running the block died; look for os._exit, a native crash or memory use in the snippet",
}


@dataclass
class Stats:
    executed: int = 0
    cached: int = 0
    failed: int = 0
    run_seconds: float = 0.0


class Engine:
    """Lives as long as the MkDocs process, so the runner (and its loaded models) survives `serve` rebuilds."""

    def __init__(self, settings: Settings, project_dir: Path, factory: RunnerFactory,
                 report: Callable[[str], None], progress: Callable[[str], None], titles: bool = True) -> None:
        self.settings, self.project_dir, self.factory = settings, project_dir, factory
        self.report, self.progress, self.titles = report, progress, titles
        self.cache = ResultCache(settings.cache_dir)
        self.rendered: dict[str, str] = {}
        self.stats = Stats()
        self._runner: Runner | None = None
        self._started = time.perf_counter()

    @property
    def runner(self) -> Runner:
        """Created on the first cache miss: a build with nothing to execute never starts it (nor imports torch)."""
        if self._runner is None:
            self._runner = self.factory(self.settings, self.progress)
        return self._runner

    def begin_build(self) -> None:
        self.rendered.clear()
        self.stats = Stats()
        self._started = time.perf_counter()
        if self._runner is not None:
            self._runner.begin_build()

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    def summary(self) -> str:
        s = self.stats
        loading = getattr(self._runner, "load_seconds", 0.0)
        total = time.perf_counter() - self._started
        return (f"{s.executed} blocks executed, {s.cached} from cache, {s.failed} failed "
                f"(model loading {loading:.1f} s, running {s.run_seconds:.1f} s, total {total:.1f} s)")

    def process_page(self, markdown: str, *, page: str, line_offset: int = 0) -> str:
        items = find_blocks(markdown, page=page, line_offset=line_offset, project_dir=self.project_dir)
        if not items:
            return markdown
        blocks = [b for b in items if isinstance(b, Block)]
        code = [b for b in blocks if b.kind == "code"]
        html: dict[int, str | list[str]] = {}  # HTML for an output fence, or Markdown lines put in the page
        for block, outcome in zip(code, self._run_code(page, code)):
            if outcome.status == "ok" and block.output == "markdown":
                html[block.line] = [block.indent + line if line else "" for line in outcome.output.split("\n")]
            else:
                html[block.line] = self._code_html(block, outcome)
        for block, columns in self._run_generate([b for b in blocks if b.kind == "generate"]):
            html[block.line] = render.generation(columns)
        lines = markdown.split("\n")
        for item in reversed(items):
            if isinstance(item, Problem):
                self.stats.failed += 1
                self._fail(item.message())
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
        hits = [self._lookup(key) for key in keys]
        if all(hit is not None for hit in hits):
            self.stats.cached += len(blocks)
            return [from_json(CodeOutcome, hit) for hit in hits if hit is not None]
        self.progress(f"{page}: running {len(blocks)} code block(s)")
        requests = [CodeRequest(b.source, b.filename, b.first_line, b.timeout or self.settings.timeout) for b in blocks]
        outcomes = self._guarded(lambda: self.runner.run_code(page, requests), CodeOutcome)
        first_failure = next((b for b, o in zip(blocks, outcomes) if o.status != "ok"), None)
        while len(outcomes) < len(blocks):
            where = f"{first_failure.page}:{first_failure.line}" if first_failure else "an earlier block"
            outcomes.append(CodeOutcome(status="skipped", error=f"not run: the block at {where} failed, and "
                                                                 "later blocks on a page depend on the earlier ones"))
        for key, outcome in zip(keys, outcomes):
            self._record(key, "code", outcome)
        return outcomes

    def _run_generate(self, blocks: list[Block]) -> list[tuple[Block, list[tuple[Any, GenerateOutcome, int]]]]:
        wanted: list[tuple[Block, str, str, int]] = []  # block, role, key, max_new_tokens
        for block in blocks:
            limit = block.max_new_tokens or self.settings.max_new_tokens
            for role in block.models:
                wanted.append((block, role, generate_key(block, self.settings.models[role], limit), limit))
        found = {key: self._lookup(key) for _, _, key, _ in wanted}
        misses = [(b, role, key, limit) for b, role, key, limit in wanted if found[key] is None]
        self.stats.cached += len(wanted) - len(misses)
        if misses:
            self.progress(f"generating {len(misses)} answer(s) for {len({b.line for b, *_ in misses})} block(s)")
            requests = [GenerateRequest(role, b.source, b.system, b.template, limit, b.timeout or self.settings.timeout)
                        for b, role, _, limit in misses]
            outcomes = self._guarded(lambda: self.runner.generate(requests), GenerateOutcome)
            outcomes += [GenerateOutcome(status="skipped", error="not run")] * (len(misses) - len(outcomes))
            for (block, role, key, _), outcome in zip(misses, outcomes):
                self._record(key, "generate", outcome)
                found[key] = to_json(outcome)
                if outcome.status != "ok":
                    self._fail(f"{block.page}:{block.line}: generate block failed on the {role} model: {outcome.error}\n"
                               f"  --> {_FIXES.get(outcome.status, 'see the message above')}")
        results = []
        for block in blocks:
            columns = [(self.settings.models[role], from_json(GenerateOutcome, found[key]), limit)  # type: ignore[arg-type]
                       for b, role, key, limit in wanted if b is block]
            results.append((block, columns))
        return results

    def _guarded(self, call: Callable[[], list[Any]], outcome_type: type) -> list[Any]:
        """The runner boundary: whatever it raises becomes a failed outcome with the message, not a traceback."""
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - reported on the page and in the log
            self.close()
            return [outcome_type(status="crashed", error=str(exc) or type(exc).__name__)]

    def _lookup(self, key: str) -> dict[str, Any] | None:
        hit = self.cache.get(key)
        if isinstance(hit, Corrupt):
            self.progress(f"cache entry {hit.path} is unusable ({hit.reason}); executing its block again")
            return None
        return hit

    def _record(self, key: str, kind: str, outcome: CodeOutcome | GenerateOutcome) -> None:
        if outcome.status == "ok":
            self.cache.put(key, {"kind": kind, **to_json(outcome)})  # only successes are stored
            self.stats.executed += 1
            self.stats.run_seconds += outcome.seconds
        elif outcome.status != "skipped":
            self.stats.failed += 1

    # -- rendering ---------------------------------------------------------------------------------

    def _code_html(self, block: Block, outcome: CodeOutcome) -> str:
        if outcome.status == "ok" and block.output == "html":
            return render.trusted_html(outcome.output)
        if outcome.status == "ok":
            return render.code_output(outcome, self.settings.models)
        if outcome.status == "skipped":
            return render.skipped(outcome.error)
        message = f"{block.page}:{block.line}: code block {_STATUS[outcome.status]}\n{_indent(outcome.error)}"
        self._fail(f"{message}\n  --> {_FIXES[outcome.status]}")
        return render.failure(f"This block {_STATUS[outcome.status]} ({block.page}:{block.line})", outcome.error, outcome.output)

    def _fail(self, message: str) -> None:
        self.report(message)

    def _source_lines(self, block: Block) -> list[str]:
        fence = "`" * max(3, _longest_run(block.source, "`") + 1)
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


_STATUS = {"error": "raised an exception", "timeout": "ran past its time limit", "crashed": "crashed"}


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _longest_run(text: str, char: str) -> int:
    best = run = 0
    for c in text:
        run = run + 1 if c == char else 0
        best = max(best, run)
    return best
