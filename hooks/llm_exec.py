"""MkDocs hook: executes ```python exec``` and ```generate``` blocks against the configured models (see README)."""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import get_plugin_logger
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from mkdocs.utils.meta import get_data

from llmexec import assets, notebooks
from llmexec.config import load_settings
from llmexec.engine import OUTPUT_FENCE, Engine
from llmexec.executor import runner_factory

log = get_plugin_logger("llm_exec")
_engine: Engine | None = None  # kept across `mkdocs serve` rebuilds, so loaded models stay warm
_dirty = False


def on_startup(*, command: str, dirty: bool) -> None:
    global _dirty
    _dirty = dirty


def on_config(config: MkDocsConfig) -> MkDocsConfig | None:
    global _engine
    project_dir = Path(config.config_file_path).resolve().parent
    watched = (Path(config.docs_dir), *(Path(w) for w in config.watch))
    settings = load_settings(config.extra, project_dir, watched)
    if not settings.enabled:
        on_shutdown()
        return None
    if _engine is None or _engine.settings != settings or _engine.factory is not runner_factory():
        if _engine is not None:
            _engine.close()
        _engine = Engine(settings, project_dir, runner_factory(), report=log.error, progress=log.info,
                         titles="pymdownx.highlight" in config.markdown_extensions)
    _engine.begin_build()
    if "pymdownx.superfences" not in config.markdown_extensions:
        config.markdown_extensions.append("pymdownx.superfences")
    fences = config.mdx_configs.setdefault("pymdownx.superfences", {}).setdefault("custom_fences", [])
    fences[:] = [f for f in fences if f.get("name") != OUTPUT_FENCE]
    fences.append({"name": OUTPUT_FENCE, "class": OUTPUT_FENCE, "format": _format_output})
    config.extra_css.append(assets.CSS_PATH)
    return config


def on_files(files: Files, /, *, config: MkDocsConfig) -> Files | None:
    if _active(config):
        files.append(File.generated(config, assets.CSS_PATH, content=assets.css()))
        pages = []
        for file in files.documentation_pages():
            if file.src_uri.endswith(".md"):
                markdown = get_data(file.content_string)[0]  # what on_page_markdown will get, front matter removed
                pages.append((_where(file, config), markdown, _offset(file, markdown)))
        _engine.prefetch(pages)  # type: ignore[union-attr]
        for file in files.documentation_pages():
            if file.src_uri.endswith(".ipynb") and file.abs_src_path:  # rendered by mkdocs-jupyter, executed here
                file.abs_src_path = str(_engine.process_notebook(Path(file.abs_src_path), _where(file, config)))  # type: ignore[union-attr]
    return files


def on_page_markdown(markdown: str, /, *, page: Page, config: MkDocsConfig, files: Files) -> str | None:
    if not _active(config):
        return None
    return _engine.process_page(markdown, page=_where(page.file, config), line_offset=_offset(page.file, markdown))  # type: ignore[union-attr]


def on_post_page(output: str, /, *, page: Page, config: MkDocsConfig) -> str | None:
    return notebooks.without_empty_script(output) if page.file.src_uri.endswith(".ipynb") else None


def on_post_build(*, config: MkDocsConfig) -> None:
    if _active(config):
        pruned = _engine.end_build(dirty=_dirty)  # type: ignore[union-attr]
        log.info(_engine.summary() + (f"; pruned {pruned} unused lockfile entries" if pruned else ""))  # type: ignore[union-attr]


def on_shutdown() -> None:
    global _engine
    if _engine is not None:
        _engine.close()
        _engine = None


def _where(file: File, config: MkDocsConfig) -> str:
    """The page's path as messages show it: relative to mkdocs.yml (docs/index.md), else its docs path."""
    project = Path(config.config_file_path).resolve().parent
    src = Path(file.abs_src_path) if file.abs_src_path else None
    return src.relative_to(project).as_posix() if src and src.is_relative_to(project) else file.src_uri


def _offset(file: File, markdown: str) -> int:
    """Lines of front matter above `markdown`, so block lines are lines of the source file."""
    source = file.content_string
    return source[: len(source) - len(markdown)].count("\n") if source.endswith(markdown) else 0


def _active(config: MkDocsConfig) -> bool:
    return _engine is not None


def _format_output(source: str, language: str, css_class: str, options: dict, md, **kwargs) -> str:
    return _engine.format_fence(source) if _engine else ""
