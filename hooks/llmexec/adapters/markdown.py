"""The Python-Markdown adapter, for renderers that load `markdown_extensions` but not MkDocs hooks (Zensical).

List it in mkdocs.yml (`- llmexec.adapters.markdown`). Under Zensical it renders every block from the committed
lockfile and checks every claim; it never executes: Zensical has no end-of-build event (no pruning, no drift
report, no worker shutdown) and renders pages one at a time on other threads, so results are made beforehand by
the command line (`make lock`), which batches the whole site. A missing result stops the build naming the block
and `make lock`. Under MkDocs and ProperDocs the hook (or the plugin) has already replaced every block before this
runs; if neither is there, any executable block is an error: never raw fences presented as content."""

from __future__ import annotations

import dataclasses
import re
import threading
from pathlib import Path
from typing import Any

from markdown import Extension, Markdown
from markdown.preprocessors import Preprocessor

from ..core.modes import renderer_only
from ..core.settings import load_settings
from ..engine import Engine
from ..errors import LlmExecError, with_fix
from ..plan.blocks import Block, find_blocks
from ..vocabulary import LOCK_COMMAND
from . import mkdocs as hook

PRIORITY = 28  # after normalize_whitespace (30: it strips the HTML stash's markers) and snippets (32), before
# superfences (25): so lines after a `--8<--` include are counted in the included text (the hook counts the source)
_engines: dict[str, Engine] = {}  # per project, kept while its settings stay the same; pages render on other threads
_lock = threading.Lock()


class LlmExecExtension(Extension):
    def __init__(self, **kwargs: Any) -> None:
        self.config = {
            "lockfile_state": [
                "",
                "a digest of the lockfile: Zensical caches pages by their text and "
                "their extensions' options, so a new digest re-renders them",
            ]
        }
        super().__init__(**kwargs)

    def extendMarkdown(self, md: Markdown) -> None:  # Python-Markdown's name
        md.preprocessors.register(_Blocks(md), "llm_exec", PRIORITY)
        md.registerExtension(self)


def makeExtension(**kwargs: Any) -> LlmExecExtension:  # Python-Markdown's name
    return LlmExecExtension(**kwargs)


class _Blocks(Preprocessor):
    def run(self, lines: list[str]) -> list[str]:
        registry = self.md.preprocessors
        context: Any = registry["rendering_context"] if "rendering_context" in registry else None  # noqa: SIM401 - a Registry has no .get()
        if context is None:
            return _without_engine(lines)
        config: dict[str, Any] = context.config
        root, docs = Path(config["root_dir"]), str(config.get("docs_dir") or "docs")
        page = f"{docs}/{context.page.path}"
        source = (root / page).read_text(encoding="utf-8-sig")
        offset = max(0, source.count("\n") - len(lines) + 1)  # front matter, removed before this runs
        errors: list[str] = []
        engine = _engine(root, docs, config.get("extra") or {})
        with _lock:
            engine.sink = errors.append
            text = engine.process_page(
                "\n".join(lines),
                page=page,
                line_offset=offset,
                place=lambda indent, html: ["", indent + self.md.htmlStash.store(html), ""],
            )
            text = _notebook_links(text, engine.settings.notebooks_elsewhere, root / docs)
        if errors:
            raise LlmExecError("\n".join(errors))
        return text.split("\n")


def _engine(root: Path, docs: str, extra: dict[str, Any]) -> Engine:
    """One engine per project, kept across pages and `serve` rebuilds while its settings stay the same. Its mode is
    locked (or preview): this adapter never starts a worker."""
    settings = load_settings(extra, root)
    settings = dataclasses.replace(settings, mode=renderer_only(settings.mode))
    with _lock:
        engine = _engines.get(str(root))
        if engine is None or engine.settings != settings:
            _check_notebooks(root / docs, settings, root)
            engine = _engines[str(root)] = Engine(
                settings, root, _never, report=lambda m: None, progress=lambda m: None
            )
        return engine


def _never(*_: Any) -> Any:
    raise LlmExecError(
        with_fix(
            "this renderer builds from the lockfile and never executes blocks",
            f"record the missing results first: {LOCK_COMMAND}",
        )
    )


def _check_notebooks(docs: Path, settings: Any, root: Path) -> None:
    """Notebooks are rendered by mkdocs-jupyter, which this renderer ignores: say so, or fail (the default)."""
    notebooks = sorted(p.relative_to(root).as_posix() for p in docs.rglob("*.ipynb"))
    if notebooks and settings.notebooks_elsewhere == "fail":
        raise LlmExecError(
            with_fix(
                f"this renderer cannot show notebooks with their outputs (it ignores mkdocs-jupyter): {', '.join(notebooks)} "
                "would be published as a raw .ipynb download",
                "build with MkDocs or ProperDocs, or set extra.llm_exec.notebooks_elsewhere: note in mkdocs.yml to publish "
                "them as downloads, marked as such next to every link to them",
            )
        )


def _notebook_links(text: str, policy: str, docs: Path) -> str:
    """With notebooks_elsewhere: note, a link to a notebook says that it leads to the raw file."""
    if policy != "note":
        return text
    return re.sub(
        r"(\[[^\]]+\]\(([^)\s]+\.ipynb)\))",
        r"\1 *(a raw notebook: this renderer cannot show it with its "
        r"outputs)*",
        text,
    )


def _without_engine(lines: list[str]) -> list[str]:
    """MkDocs or ProperDocs: the hook replaced the blocks already. If a block is still here, the hook did not run."""
    if hook._engine is not None:
        return lines
    found = find_blocks(
        "\n".join(lines),
        page="this page",
        line_offset=0,
        project_dir=Path("."),
        roles=("base", "tuned", "preferred", "instruct"),
    )  # a Problem too is an executable fence (an evaluate one
    if found:  # may name a variant this guess of the roles lacks)
        where = found[0].where if isinstance(found[0], Block) else f"{found[0].page}:{found[0].line}"
        raise LlmExecError(
            with_fix(
                f"{where}: an executable block, and nothing ran it: llmexec.adapters.markdown is loaded, but "
                "this renderer gives it no page context and neither the llm-exec plugin nor the llm_exec hook is active",
                "add `plugins: [llm-exec]` (or the hook file: `hooks: [hooks/llm_exec.py]`) to mkdocs.yml (MkDocs, "
                "ProperDocs), or build with Zensical",
            )
        )
    return lines
