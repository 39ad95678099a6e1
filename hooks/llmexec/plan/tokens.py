"""```tokens``` fences: an evaluate block's recorded answers of one variant, each scored token by token under another model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .. import SCHEMA_VERSION
from ..core.files import digest
from ..core.models import ModelSpec
from ..core.protocol import GenerateOutcome
from ..core.ranking import RANK_CAP, RankRequest
from ..core.templates import TEMPLATES
from .options import Block, Problem, name_option, options_block, timeout_option, unknown_options
from .variants import Variant

if TYPE_CHECKING:  # resolve imports this module on every build; evaluate loads when a page has a tokens fence
    from .evaluate import Item

OPTIONS = {"of", "answers", "under", "show", "id", "timeout"}
TOP = 3  # the scoring model's top choices recorded at each position
_FIX = "write e.g. ```tokens of=heldout answers=tuned under=base show=1 id=shift (of= names an evaluate block on this page)"


@dataclass(frozen=True)
class View:
    """What a tokens fence asks for: whose answers (`answers`, a variant of the evaluate block `of`), scored under
    which model (`under`), given exactly the text the answering model got; `show` answers per kind on the page."""

    of: str
    answers: str
    under: str
    show: int
    items: tuple[Item, ...] = ()  # the evaluate block's set, once linked
    keys: tuple[str, ...] = ()  # the generation job of each item's answer, in the same order
    role: str = ""  # the answering (tuned) model's role, once linked
    turn_format: str = ""  # its turn format: the prompt the scoring model gets is exactly its input


@dataclass(frozen=True)
class RankJob:
    """One recorded answer to score: keyed on the scoring model, the exact prompt and the answer's text."""

    block: Block
    item: Item
    key: str
    request: RankRequest


def tokens_block(options: dict[str, str], body: list[str], *, page: str, line: int) -> Block | Problem:
    """The fence's own options; the evaluate block it reads is linked once the page's blocks are known (link())."""
    if problem := unknown_options(options, OPTIONS, "tokens", page, line):
        return problem
    if "\n".join(body).strip():
        return Problem(page, line, "a tokens block takes no text between its fences", _FIX)
    timeout = timeout_option(options, page, line)
    if isinstance(timeout, Problem):
        return timeout
    if problem := name_option(options, page, line):
        return problem
    if not options.get("of") or not options.get("answers"):
        return Problem(page, line, "a tokens block needs of= (an evaluate block's id) and answers= (its variant)", _FIX)
    show = options.get("show", "1")
    if not show.isdigit() or not 1 <= int(show) <= 50:
        return Problem(
            page, line, f"show={show!r} is not a whole number from 1 to 50", "write e.g. show=1 (answers per kind)"
        )
    view = View(options["of"], options["answers"], options.get("under", "base"), int(show))
    return options_block("tokens", page, line, options, timeout=timeout, title=options["of"], view=view)


def link(
    block: Block,
    evaluations: Mapping[str, Block],
    jobs: Mapping[tuple[int, str, str], str],
    roles: tuple[str, ...],
    formats: Mapping[str, str],
) -> Block | Problem:
    """The tokens block with its evaluate block's items and answer keys, or a Problem naming what is wrong.
    `jobs`: (evaluate line, item id, variant name) -> the key of that generation job."""
    view: View = block.view
    target = evaluations.get(view.of)
    if target is None:
        return _problem(
            block,
            f"of={view.of} names no evaluate block on this page",
            f"give the evaluate block id={view.of}, or name one of: {', '.join(evaluations) or 'none'}",
        )
    variants = {v.name: v for v in target.evaluation.variants}
    chosen: Variant | None = variants.get(view.answers)
    if chosen is None or chosen.layout != "chat" or chosen.role not in formats:
        tuned = [name for name, v in variants.items() if v.layout == "chat" and v.role in formats]
        return _problem(
            block,
            f"answers={view.answers} is not a variant of {view.of} that a tuned model answers in its own turn format",
            f"use one of: {', '.join(tuned) or 'none (add one)'}",
        )
    if view.under not in roles or view.under == chosen.role:
        return _problem(
            block,
            f"under={view.under} is not another configured model",
            f"use one of: {', '.join(r for r in roles if r != chosen.role)}",
        )
    items = target.evaluation.items
    keys = tuple(jobs[(target.line, item.id, chosen.name)] for item in items)
    return replace(
        block, view=replace(view, items=items, keys=keys, role=chosen.role, turn_format=formats[chosen.role])
    )


def _problem(block: Block, reason: str, fix: str) -> Problem:
    return Problem(block.page, block.line, reason, fix, block.start, block.end, block.indent)


def rank_jobs(
    block: Block, generated: Mapping[str, GenerateOutcome], model: ModelSpec, timeout: float
) -> list[RankJob]:
    """A job per recorded answer (answers this build does not have are left out: the view says so)."""
    from .evaluate import request  # loaded with the tokens fence's evaluate block (see the imports above)

    view: View = block.view
    end = TEMPLATES[view.turn_format].end
    found = []
    for item, key in zip(view.items, view.keys):
        answer = generated.get(key)
        if answer is None or answer.status != "ok":
            continue
        prompt = request(item, Variant(view.under, view.under, view.role, view.turn_format))["source"]
        asked = RankRequest(
            view.under, prompt, answer.text, end if answer.finish_reason == "eos" else "", TOP, block.timeout or timeout
        )
        found.append(RankJob(block, item, rank_key(asked, model), asked))
    return found


def rank_key(asked: RankRequest, model: ModelSpec) -> str:
    """What the scores depend on: the scoring model, the exact prompt, the answer's text and its end marker."""
    return digest(
        {
            "schema": SCHEMA_VERSION,
            "kind": "ranks",
            "model": model.identity,
            "prompt": asked.prompt,
            "answer": asked.answer,
            "end": asked.end,
            "top": asked.top,
            "scoring": f"forward-fp32:rank-cap-{RANK_CAP}",
        }
    )


def entry_fields(job: RankJob) -> dict[str, Any]:
    """What a lockfile entry records about the job besides its outcome (resolve.entries adds the rest)."""
    return {
        "index": f"{job.item.id} {job.block.view.answers}",
        "role": job.request.model,
        "source": job.request.prompt,
        "settings": {
            "answer_of": job.block.view.answers,
            "end": job.request.end,
            "top": job.request.top,
            "scoring": "one forward pass, fp32",
            "rank_cap": RANK_CAP,
        },
    }
