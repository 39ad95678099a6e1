"""The MkDocs plugin (`plugins: [llm-exec]`): the hook's events on a plugin instance; settings stay in extra.llm_exec."""

from __future__ import annotations

from typing import Any

from mkdocs.config.base import ValidationError
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

from ..core.settings import SECTION
from ..errors import with_fix
from . import mkdocs as hook

NAME = "llm-exec"  # the entry point in pyproject.toml
LATE = -50  # after the other plugins, where MkDocs runs a hook's events: both forms see the same files and pages


class LlmExecPlugin(BasePlugin):
    """Each event calls the hook's function of the same name (adapters/mkdocs.py): one engine per process either way,
    kept across `mkdocs serve` rebuilds. It takes no options of its own (MkDocs' generic `enabled: false` aside):
    the settings are `extra.llm_exec`, the one place every reader finds them (the hook, `python -m llmexec`, and
    the Markdown extension under Zensical, which drops the plugins it does not know with their options)."""

    def load_config(self, options: dict[str, Any], config_file_path: str | None = None) -> tuple[list, list]:
        errors, warnings = super().load_config({}, config_file_path)
        errors += [
            (
                key,
                ValidationError(
                    with_fix(
                        f"this plugin takes no options: its settings are {SECTION}, which "
                        "the hook, `python -m llmexec` and the Markdown extension (Zensical) "
                        "read too",
                        f"move `{key}` under {SECTION} in mkdocs.yml",
                    )
                ),
            )
            for key in options
        ]
        return errors, warnings

    def on_startup(self, *, command: str, dirty: bool) -> None:
        hook.on_startup(command=command, dirty=dirty)

    @event_priority(LATE)
    def on_config(self, config: MkDocsConfig) -> MkDocsConfig | None:
        hooks = [name for name, other in config.plugins.items() if getattr(other, "on_config", None) is hook.on_config]
        if hooks:
            raise PluginError(
                with_fix(
                    f"mkdocs.yml configures llm-exec twice: as the plugin `{NAME}` and as the hook {', '.join(hooks)} "
                    "(every block would be processed twice)",
                    f"keep one: remove `{NAME}` from `plugins:` or {', '.join(hooks)} from `hooks:`",
                )
            )
        return hook.on_config(config)

    def on_serve(self, server: Any, /, *, config: MkDocsConfig, builder: Any) -> Any:
        return hook.on_serve(server, config=config, builder=builder)

    @event_priority(LATE)
    def on_files(self, files: Files, /, *, config: MkDocsConfig) -> Files | None:
        return hook.on_files(files, config=config)

    @event_priority(LATE)
    def on_page_markdown(self, markdown: str, /, *, page: Page, config: MkDocsConfig, files: Files) -> str | None:
        return hook.on_page_markdown(markdown, page=page, config=config, files=files)

    @event_priority(LATE)
    def on_post_page(self, output: str, /, *, page: Page, config: MkDocsConfig) -> str | None:
        return hook.on_post_page(output, page=page, config=config)

    @event_priority(LATE)
    def on_post_build(self, *, config: MkDocsConfig) -> None:
        hook.on_post_build(config=config)

    def on_build_error(self, *, error: Exception) -> None:
        hook.on_build_error(error=error)

    def on_shutdown(self) -> None:
        hook.on_shutdown()
