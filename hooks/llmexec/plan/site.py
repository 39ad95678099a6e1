"""The site as the command line sees it, without a renderer: mkdocs.yml's settings and every page and notebook."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, with_fix

_FRONT_MATTER = re.compile(r"\A-{3}[ \t]*\n.*?\n(?:-{3}|\.{3})[ \t]*\n", re.S)


class _Loader(yaml.SafeLoader):
    """mkdocs.yml may use tags for MkDocs and Python-Markdown (!ENV, !relative, !!python/name:...); the values they
    stand for do not matter here, so every tag is read as the plain value under it."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    raise yaml.constructor.ConstructorError(None, None, f"unknown YAML node {node!r}", node.start_mark)


_Loader.add_multi_constructor("!", _any_tag)
_Loader.add_multi_constructor("tag:yaml.org,2002:python/", _any_tag)


@dataclass(frozen=True)
class SitePage:
    """A page as the engine wants it: its name in messages, its Markdown (front matter removed), and where it is."""

    where: str  # docs/index.md, relative to mkdocs.yml
    path: Path
    markdown: str
    line_offset: int  # lines of front matter above `markdown`

    @property
    def notebook(self) -> bool:
        return self.path.suffix == ".ipynb"


def read_config(config_file: Path) -> dict[str, Any]:
    try:
        data = yaml.load(config_file.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - tags read as values
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(
            with_fix(
                f"cannot read {config_file}: {exc}", "run from the folder of mkdocs.yml, or pass -f path/to/mkdocs.yml"
            )
        ) from None
    return data if isinstance(data, dict) else {}


def pages(config_file: Path, config: dict[str, Any]) -> list[SitePage]:
    """Every Markdown page and notebook under docs_dir, in path order (what MkDocs and Zensical would render)."""
    root = config_file.resolve().parent
    docs = root / str(config.get("docs_dir") or "docs")
    excluded = _exclude_patterns(config)
    found = []
    for path in sorted(p for p in docs.rglob("*") if p.suffix in (".md", ".ipynb") and p.is_file()):
        relative = path.relative_to(docs).as_posix()
        if any(part.startswith(".") for part in path.relative_to(docs).parts) or any(
            fnmatch.fnmatch(relative, pattern) for pattern in excluded
        ):
            continue
        text = "" if path.suffix == ".ipynb" else path.read_text(encoding="utf-8-sig")
        markdown = _FRONT_MATTER.sub("", text, count=1)
        offset = text[: len(text) - len(markdown)].count("\n")
        found.append(SitePage(path.relative_to(root).as_posix(), path, markdown, offset))
    return found


def _exclude_patterns(config: dict[str, Any]) -> list[str]:
    patterns = str(config.get("exclude_docs") or "").splitlines()
    return [p.strip().lstrip("/") for p in patterns if p.strip() and not p.strip().startswith("#")]
