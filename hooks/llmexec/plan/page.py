"""A page's plan, made once per build: its blocks (or problems), claims, code keys and generation jobs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.request import Request
from ..core.settings import Settings
from . import variants
from .blocks import Block, Problem, find_blocks
from .keys import code_keys, generate_key

if TYPE_CHECKING:  # the modules of claims, evaluate, tokens and notebooks load when a page has one (build start-up)
    from .claims import Claim


@dataclass(frozen=True)
class Job:
    """One generation to look up or run: a generate block's answer from one model."""

    block: Block
    role: str
    key: str
    request: Request  # the block's, with max_new_tokens resolved
    index: int | str  # the block's position among the page's generate blocks; an evaluate job: "ITEM VARIANT"
    variant: str = ""  # the variant's name (evaluate jobs; a generate column such as base:tuned-format)
    item: str = ""  # an evaluate job: the item's id

    @property
    def limit(self) -> int:
        return self.request.max_new_tokens


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
    def evaluate(self) -> list[Block]:
        return [b for b in self.items if isinstance(b, Block) and b.kind == "evaluate"]

    @property
    def tokens(self) -> list[Block]:
        return [b for b in self.items if isinstance(b, Block) and b.kind == "tokens"]

    @property
    def named(self) -> dict[str, str]:
        """Block ids, and where each block is: what claims may refer to."""
        return {b.name: b.where for b in self.items if isinstance(b, Block) and b.name}


def plan_page(markdown: str, *, page: str, line_offset: int, project_dir: Path, settings: Settings) -> PagePlan:
    items = tuple(
        find_blocks(
            markdown,
            page=page,
            line_offset=line_offset,
            project_dir=project_dir,
            roles=tuple(settings.models),
            formats=turn_formats(settings),
        )
    )
    code = tuple(b for b in items if isinstance(b, Block) and b.kind == "code")
    generate = [b for b in items if isinstance(b, Block) and b.kind == "generate"]
    evaluations = [b for b in items if isinstance(b, Block) and b.kind == "evaluate"]
    planned = jobs(generate, settings) + [j for b in evaluations for j in evaluation_jobs(b, settings)]
    if any(isinstance(b, Block) and b.kind == "tokens" for b in items):
        from . import tokens  # only a page with a tokens fence needs it

        keys = {(j.block.line, j.item, j.variant): j.key for j in planned if j.variant}
        named = {b.name: b for b in evaluations if b.name}
        items = tuple(
            tokens.link(b, named, keys, tuple(settings.models), turn_formats(settings))
            if isinstance(b, Block) and b.kind == "tokens"
            else b
            for b in items
        )
    return PagePlan(
        page,
        markdown,
        items,
        claims(markdown, page=page, line_offset=line_offset),
        code,
        tuple(code_keys(code, settings.models)),
        tuple(planned),
    )


def claims(markdown: str, *, page: str, line_offset: int) -> tuple[Claim, ...]:
    """The page's checked claims; a page without `]{check:` has none, and the module finding them is not loaded."""
    if "]{check:" not in markdown:
        return ()
    from .claims import find_claims

    return tuple(find_claims(markdown, page=page, line_offset=line_offset))


def plan_notebook(path: Path, *, page: str, settings: Settings) -> PagePlan:
    """A notebook: its code cells are the page's code blocks, chained; its Markdown cells hold its claims."""
    from . import notebooks  # only a site with notebooks needs it

    notebook = notebooks.load(path, page)
    code = tuple(notebooks.code_blocks(notebook, page))
    return PagePlan(page, "", code, (), code, tuple(code_keys(code, settings.models)), (), notebook)


def jobs(blocks: list[Block], settings: Settings) -> list[Job]:
    """A generate block's answer per model= column; a column such as base:tuned-format asks the role the block laid
    out as that variant says (a plain role keeps the block as written, so its key is unchanged)."""
    found = []
    for index, block in enumerate(blocks):
        for v in block.variants:
            asked = variants.generate_as(block, v)
            request = replace(asked.request, max_new_tokens=asked.request.max_new_tokens or settings.max_new_tokens)
            found.append(
                Job(
                    asked,
                    v.role,
                    generate_key(request, settings.models[v.role]),
                    request,
                    index,
                    v.name if v.layout != "chat" else "",
                )
            )
    return found


def evaluation_jobs(block: Block, settings: Settings) -> list[Job]:
    """An evaluate block: one generation per (item, variant), each the job of an equivalent generate block."""
    from . import evaluate  # only a page with an evaluate fence needs it

    found = []
    for item in block.evaluation.items:
        for variant in block.evaluation.variants:
            asked = evaluate.with_request(block, item, variant)
            found.append(
                Job(
                    asked,
                    variant.role,
                    generate_key(asked.request, settings.models[variant.role]),
                    asked.request,
                    f"{item.id} {variant.name}",
                    variant.name,
                    item.id,
                )
            )
    return found


def turn_formats(settings: Settings) -> dict[str, str]:
    """The turn format (a core.templates.TEMPLATES name) of each tuned role: known without loading the model."""
    return {role: spec.tune_parts()[0].template for role, spec in settings.models.items() if spec.kind == "tuned"}
