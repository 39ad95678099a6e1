"""Block and Problem, the values every fence kind becomes, and the option checks the kinds share."""

from __future__ import annotations

import builtins
import keyword
from dataclasses import dataclass, field
from typing import Any, Literal

from ..core.request import Request
from ..vocabulary import CLAIM_HELPERS, seconds_problem
from .variants import Variant

BlockKind = Literal["code", "generate", "evaluate", "tokens"]


@dataclass(frozen=True)
class Problem:
    """A block that cannot run, kept as a value until the engine reports it."""

    page: str
    line: int
    reason: str
    fix: str
    start: int = 0  # span of the offending fence in the Markdown, replaced by an error box
    end: int = 0
    indent: str = ""

    def message(self) -> str:
        return f"{self.page}:{self.line}: {self.reason}\n  --> {self.fix}"


@dataclass(frozen=True)
class Block:
    """One executable fence (or notebook code cell): where it is, what it runs, and its validated options."""

    kind: BlockKind
    page: str  # the page's path as shown in messages, e.g. docs/index.md
    line: int  # 1-based line of the opening fence in the page's source file
    start: int  # first line index in the Markdown handed to the hook (0-based)
    end: int  # one past the closing fence's line index
    indent: str
    source: str  # normalized code, or the prompt text exactly as the model will get it
    filename: str  # what tracebacks name: the page, or the included snippet file
    first_line: int  # line number of the source's first line inside `filename`
    timeout: float | None = None
    title: str = ""
    models: tuple[str, ...] = ()  # generate: the roles to run, in display order
    output: str = "text"  # code: "text" (escaped, the default), or the explicit opt-ins "markdown" and "html"
    show_source: bool = True
    cell: bool = False  # a notebook code cell: `line` is the cell number, and its last expression is displayed
    name: str = ""  # id=NAME: how checked claims in the page's prose refer to this block's result
    request: Request = Request(max_new_tokens=0)  # generate: what each model is asked (max_new_tokens 0: the site's)
    evaluation: Any = None  # evaluate: the plan.evaluate.Evaluation it asks for
    view: Any = None  # tokens: the plan.tokens.View it shows
    variants: tuple[Variant, ...] = ()  # generate: the model= columns parsed (ROLE, or e.g. base:tuned-format)
    options: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def where(self) -> str:
        """How messages name it: page.md:LINE, or notebook.ipynb: cell N."""
        return f"{self.page}: cell {self.line}" if self.cell else f"{self.page}:{self.line}"


def options_block(
    kind: BlockKind,
    page: str,
    line: int,
    options: dict[str, str],
    *,
    timeout: float | None,
    title: str,
    evaluation: Any = None,
    view: Any = None,
) -> Block:
    """A fence whose whole content is its options (evaluate, tokens): no source of its own; the planner places it."""
    return Block(
        kind,
        page,
        line,
        0,
        0,
        "",
        "",
        page,
        line + 1,
        timeout=timeout,
        title=title,
        name=options.get("id", ""),
        evaluation=evaluation,
        view=view,
        options=options,
    )


def name_problem(name: str) -> str:
    """'' for a usable block id; else why not (claims refer to it as a Python name)."""
    if not name.isidentifier() or keyword.iskeyword(name):
        return f"id={name!r} is not a name a claim can use"
    if name in CLAIM_HELPERS or hasattr(builtins, name):
        return f"id={name} would hide the function {name}() that checks can call"
    return ""


def unknown_options(options: dict[str, str], allowed: set[str], what: str, page: str, line: int) -> Problem | None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        return Problem(
            page,
            line,
            f"unknown option {', '.join(map(repr, unknown))} on {'an' if what[0] in 'aeiou' else 'a'} {what} block",
            f"the options are: {', '.join(sorted(allowed))}",
        )
    return None


def name_option(options: dict[str, str], page: str, line: int) -> Problem | None:
    if "id" in options and (reason := name_problem(options["id"])):
        return Problem(page, line, reason, "write e.g. id=capital (letters, digits and _, not starting with a digit)")
    return None


def timeout_option(options: dict[str, str], page: str, line: int) -> float | Problem | None:
    if "timeout" not in options:
        return None
    try:
        value = float(options["timeout"])
    except ValueError:
        value = -1
    if seconds_problem(value):
        return Problem(
            page, line, f"timeout={options['timeout']!r} is not a positive number of seconds", "write e.g. timeout=30"
        )
    return value
