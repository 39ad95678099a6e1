"""A page's plan, made once per build: its blocks (or problems), claims, code keys and generation jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.settings import Settings
from . import notebooks
from .blocks import Block, Problem, find_blocks
from .claims import Claim, find_claims
from .keys import code_keys, generate_key


@dataclass(frozen=True)
class Job:
    """One generation to look up or run: a generate block's answer from one model."""

    block: Block
    role: str
    key: str
    limit: int
    index: int  # the block's position among the page's generate blocks


@dataclass(frozen=True)
class PagePlan:
    """Everything a page asks for, before anything is looked up or executed."""

    page: str  # as messages show it: docs/index.md
    markdown: str
    items: tuple[Block | Problem, ...]
    claims: tuple[Claim, ...]
    code: tuple[Block, ...]
    code_keys: tuple[str, ...]  # chained: each depends on the blocks before it
    jobs: tuple[Job, ...]  # generate blocks x their models
    notebook: dict[str, Any] = field(default_factory=dict, compare=False)  # a notebook page: the notebook itself

    @property
    def generate(self) -> list[Block]:
        return [b for b in self.items if isinstance(b, Block) and b.kind == "generate"]

    @property
    def named(self) -> dict[str, str]:
        """Block ids, and where each block is: what claims may refer to."""
        return {b.name: b.where for b in self.items if isinstance(b, Block) and b.name}


def plan_page(markdown: str, *, page: str, line_offset: int, project_dir: Path, settings: Settings) -> PagePlan:
    items = tuple(find_blocks(markdown, page=page, line_offset=line_offset, project_dir=project_dir,
                              roles=tuple(settings.models)))
    code = tuple(b for b in items if isinstance(b, Block) and b.kind == "code")
    generate = [b for b in items if isinstance(b, Block) and b.kind == "generate"]
    return PagePlan(page, markdown, items, tuple(find_claims(markdown, page=page, line_offset=line_offset)), code,
                    tuple(code_keys(code, settings.models)), tuple(jobs(generate, settings)))


def plan_notebook(path: Path, *, page: str, settings: Settings) -> PagePlan:
    """A notebook: its code cells are the page's code blocks, chained; its Markdown cells hold its claims."""
    notebook = notebooks.load(path, page)
    code = tuple(notebooks.code_blocks(notebook, page))
    return PagePlan(page, "", code, (), code, tuple(code_keys(code, settings.models)), (), notebook)


def jobs(blocks: list[Block], settings: Settings) -> list[Job]:
    found = []
    for index, block in enumerate(blocks):
        limit = block.max_new_tokens or settings.max_new_tokens
        for role in block.models:
            found.append(Job(block, role, generate_key(block, settings.models[role], limit), limit, index))
    return found
