"""MkDocs hook: executes ```python exec``` and ```generate``` blocks against the configured models (see README).
The events live in llmexec.adapters.mkdocs; this file only makes MkDocs find them."""

from llmexec.adapters.mkdocs import (
    on_build_error,
    on_config,
    on_files,
    on_page_markdown,
    on_post_build,
    on_post_page,
    on_serve,
    on_shutdown,
    on_startup,
)

__all__ = [
    "on_build_error",
    "on_config",
    "on_files",
    "on_page_markdown",
    "on_post_build",
    "on_post_page",
    "on_serve",
    "on_shutdown",
    "on_startup",
]
