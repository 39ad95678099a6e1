"""The MkDocs (and ProperDocs) adapter: the hook's events, each a thin call into the renderer-neutral engine."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import get_plugin_logger
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from mkdocs.utils.meta import get_data

from ..core.files import atomic_write
from ..core.settings import load_settings
from ..engine import Engine
from ..errors import LlmExecError
from ..present import assets, render
from ..resolve.runner import runner_factory

if TYPE_CHECKING:  # imported by on_serve only: its watchdog, http.server and ssl would cost every build ~10 ms
    from mkdocs.livereload import LiveReloadServer

    from ..resolve.deferred import Background

log = get_plugin_logger("llm_exec")
OUTPUT_FENCE = "llmx-output"  # a superfences custom fence: the HTML of an output goes in where the block was
P = ParamSpec("P")
R = TypeVar("R")
_engine: Engine | None = None  # kept across `mkdocs serve` rebuilds, so loaded models stay warm
_dirty = False
_serving = False  # `mkdocs serve` (not `serve --clean`, which MkDocs runs as builds)
_background: Background | None = None  # under `serve`, once watching: missing answers are generated in the background
_rendered: dict[str, str] = {}  # this build's outputs, by the id written into their output fence
_pages: dict[str, tuple[str, str, int]] = {}  # src_uri -> (Markdown, page as messages name it, line offset): on_files'


def _stops_cleanly(event: Callable[P, R]) -> Callable[P, R]:
    """The one error boundary on the MkDocs side: an engine error aborts the build with its message, no traceback."""

    @functools.wraps(event)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return event(*args, **kwargs)
        except LlmExecError as exc:
            raise PluginError(str(exc)) from None

    return run


def on_startup(*, command: str, dirty: bool) -> None:
    global _dirty, _serving, _background
    _dirty, _serving, _background = dirty, command == "serve", None


def on_serve(server: LiveReloadServer, /, *, config: MkDocsConfig, builder: Callable) -> LiveReloadServer:
    """After the first build of `mkdocs serve`: later rebuilds show a page at once and generate its missing answers in
    the background; when they are ready a file in a folder MkDocs now watches is written, and MkDocs rebuilds.
    Another server (ProperDocs') or `serve --clean`: every build waits for its answers, as `mkdocs build` does."""
    global _background
    from mkdocs.livereload import LiveReloadServer  # already loaded by `serve`

    from ..resolve.deferred import Background  # `serve` only: a build's start-up skips it

    if _engine is not None and _serving and isinstance(server, LiveReloadServer):
        ready = _engine.settings.cache_dir / "serve" / "answers-ready"  # written by nothing else: never a loop
        ready.parent.mkdir(parents=True, exist_ok=True)
        server.watch(str(ready.parent))
        _background = _engine.background = Background(lambda: atomic_write(ready, f"{time.time_ns()}\n"))
    return server


@_stops_cleanly
def on_config(config: MkDocsConfig) -> MkDocsConfig | None:
    global _engine
    project_dir = Path(config.config_file_path).resolve().parent
    watched = (Path(config.docs_dir), *(Path(w) for w in config.watch))
    settings = load_settings(config.extra, project_dir, watched)
    if not settings.enabled:
        on_shutdown()
        return None
    if _engine is not None and _engine.factory is runner_factory() and _engine.project_dir == project_dir:
        _engine.reconfigure(settings)  # the worker is kept when its models and threads are unchanged
    else:
        on_shutdown()
        _engine = Engine(settings, project_dir, runner_factory(), report=log.error, progress=log.info)
    _engine.titles = "pymdownx.highlight" in config.markdown_extensions
    _engine.background = _background
    _engine.begin_build()
    _rendered.clear()
    _pages.clear()
    if "pymdownx.superfences" not in config.markdown_extensions:
        config.markdown_extensions.append("pymdownx.superfences")
    fences = config.mdx_configs.setdefault("pymdownx.superfences", {}).setdefault("custom_fences", [])
    fences[:] = [f for f in fences if f.get("name") != OUTPUT_FENCE]
    fences.append({"name": OUTPUT_FENCE, "class": OUTPUT_FENCE, "format": _format_output})
    config.extra_css.append(assets.CSS_PATH)
    return config


@_stops_cleanly
def on_files(files: Files, /, *, config: MkDocsConfig) -> Files | None:
    if _engine is None:
        return None
    files.append(File.generated(config, assets.CSS_PATH, content=assets.css()))
    pages, project = [], _engine.project_dir
    for file in files.documentation_pages():
        if file.src_uri.endswith(".md"):
            source = file.content_string  # read from disk at each call
            markdown = get_data(source)[0]  # what on_page_markdown will get, front matter removed
            where, offset = _where(file, project), _offset(source, markdown)
            _pages[file.src_uri] = (markdown, where, offset)
            pages.append((where, markdown, offset))
    _engine.prefetch(pages)
    for file in files.documentation_pages():
        if file.src_uri.endswith(".ipynb") and file.abs_src_path:  # rendered by mkdocs-jupyter, executed here
            file.abs_src_path = str(_engine.process_notebook(Path(file.abs_src_path), _where(file, project)))
    return files


@_stops_cleanly
def on_page_markdown(markdown: str, /, *, page: Page, config: MkDocsConfig, files: Files) -> str | None:
    if _engine is None:
        return None
    known = _pages.get(page.file.src_uri)
    if known is None or known[0] != markdown:  # another plugin changed it since on_files
        known = (markdown, _where(page.file, _engine.project_dir), _offset(page.file.content_string, markdown))
    return _engine.process_page(markdown, page=known[1], line_offset=known[2], place=_place)


def on_post_page(output: str, /, *, page: Page, config: MkDocsConfig) -> str | None:
    if not page.file.src_uri.endswith(".ipynb"):
        return None
    from ..present import notebooks  # only notebook pages need it: a build's start-up skips it

    return notebooks.without_empty_script(output)


@_stops_cleanly
def on_post_build(*, config: MkDocsConfig) -> None:
    if _engine is not None:
        pruned = _engine.end_build(dirty=_dirty)
        log.info(_engine.summary() + (f"; pruned {pruned} unused lockfile entries" if pruned else ""))


def on_build_error(*, error: Exception) -> None:
    if _engine is not None:
        _engine.build_ended()


def on_shutdown() -> None:
    global _engine
    if _engine is not None:
        _engine.close()
        _engine = None


def _where(file: File, project: Path) -> str:
    """The page's path as messages show it: relative to mkdocs.yml's folder (docs/index.md; resolved once, by
    on_config), else its docs path."""
    src = Path(file.abs_src_path) if file.abs_src_path else None
    return src.relative_to(project).as_posix() if src and src.is_relative_to(project) else file.src_uri


def _offset(source: str, markdown: str) -> int:
    """Lines of front matter above `markdown` in the page's `source`, so block lines are lines of the source file."""
    return source[: len(source) - len(markdown)].count("\n") if source.endswith(markdown) else 0


def _place(indent: str, html: str) -> list[str]:
    """An output goes into the page as a fence that superfences hands to _format_output (the HTML stays as is).
    Not stored in the HTML stash as the Zensical adapter does: a stash placeholder survives only after
    normalize_whitespace (priority 30), so after pymdownx.snippets (32) has expanded includes; pages planned there
    name blocks by lines of the expanded text, plan the fences of included files (the command line does not), and
    differ from the text on_files prefetched (every page planned twice a build). Tried (issue 20); tests/test_modes.py
    pins the source's lines."""
    ident = f"llmx-{len(_rendered)}"
    _rendered[ident] = html
    return [f"{indent}```{OUTPUT_FENCE}", f"{indent}{ident}", f"{indent}```"]


def _format_output(source: str, language: str, css_class: str, options: dict, md, **kwargs) -> str:
    ident = source.strip()
    if ident in _rendered:
        return _rendered[ident]
    return render.failure("Output missing", f"no output recorded for {ident!r}")
