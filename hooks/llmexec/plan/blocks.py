"""Finding executable fences in a page's Markdown and turning them into Block values (or Problems)."""

from __future__ import annotations

import builtins
import keyword
import re
import shlex
import textwrap
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from ..core.request import Request
from .variants import Broken, Variant, variant
from ..vocabulary import (CLAIM_HELPERS, DISPLAY_ORDER, MAX_NEW_TOKENS, MODEL_SETS, OUTPUT_FORMATS, TEMPLATES,
                          max_new_tokens_problem, seconds_problem)

BlockKind = Literal["code", "generate", "evaluate", "tokens"]

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")
_CODE_LANGS = {"python", "py", "python3"}
_CODE_OPTIONS = {"exec", "file", "timeout", "title", "output", "show", "id"}
_GENERATE_OPTIONS = {"model", "max_new_tokens", "system", "template", "timeout", "id", "prefill", "stop", "seed",
                     "temperature", "top_p", "generation_prompt", "repetition_penalty"}
_ESCAPES = {"\\n": "\n", "\\t": "\t", "\\\\": "\\"}  # what stop="\n" and prefill="...\n" mean


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


def find_blocks(markdown: str, *, page: str, line_offset: int, project_dir: Path,
                roles: tuple[str, ...] = ("base", "instruct"), formats: dict[str, str] | None = None) -> list[Block | Problem]:
    """Scan Markdown for ```python exec```, ```generate```, ```evaluate``` and ```tokens``` fences; other fences are skipped whole.
    `formats`: the turn format (template name) of each tuned role, for evaluate variants such as base:tuned-format."""
    lines = markdown.split("\n")
    found: list[Block | Problem] = []
    names: dict[str, int] = {}
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, info = opening["indent"], opening["fence"], opening["info"]
        close = _closing_index(lines, i + 1, indent, fence)
        body = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines[i + 1 : close]]
        line_no = line_offset + i + 1
        item = _classify(info, body, page=page, line=line_no, project_dir=project_dir, roles=roles, formats=formats or {})
        if item is not None:
            if close >= len(lines):
                item = Problem(page, line_no, "this executable fence is never closed", f"add a closing {fence}")
            if isinstance(item, Block) and item.name:
                if item.name in names:
                    item = Problem(page, line_no, f"id={item.name} is already used by the block at line {names[item.name]}",
                                   "give each block on a page its own id")
                else:
                    names[item.name] = line_no
            item = replace(item, start=i, end=min(close + 1, len(lines)), indent=indent)
            found.append(item)
        i = close + 1
    return found


def fence_spans(markdown: str) -> list[tuple[int, int]]:
    """(first line, one past the last line) of every fenced block, executable or not: prose is what lies outside."""
    lines = markdown.split("\n")
    spans, i = [], 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening:
            close = _closing_index(lines, i + 1, opening["indent"], opening["fence"])
            spans.append((i, min(close + 1, len(lines))))
            i = close + 1
        else:
            i += 1
    return spans


def name_problem(name: str) -> str:
    """'' for a usable block id; else why not (claims refer to it as a Python name)."""
    if not name.isidentifier() or keyword.iskeyword(name):
        return f"id={name!r} is not a name a claim can use"
    if name in CLAIM_HELPERS or hasattr(builtins, name):
        return f"id={name} would hide the function {name}() that checks can call"
    return ""


def _closing_index(lines: list[str], start: int, indent: str, fence: str) -> int:
    for j in range(start, len(lines)):
        stripped = lines[j].strip()
        if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
            return j
    return len(lines)


def _classify(info: str, body: list[str], *, page: str, line: int, project_dir: Path,
              roles: tuple[str, ...], formats: dict[str, str]) -> Block | Problem | None:
    words = info.split(None, 1)
    if not words:
        return None
    lang, rest = words[0].lower(), (words[1] if len(words) > 1 else "")
    if lang not in _CODE_LANGS and lang not in ("generate", "evaluate", "tokens"):
        return None
    try:
        options = _parse_options(rest)
    except ValueError as exc:
        return Problem(page, line, f"cannot read the fence options ({exc})", 'quote values with spaces: system="You are terse."')
    if lang in _CODE_LANGS:
        if "exec" not in options:
            return None
        return _code_block(options, body, page=page, line=line, project_dir=project_dir)
    if lang == "evaluate":
        from .evaluate import evaluate_block  # it builds on this module's option checks

        return evaluate_block(options, body, page=page, line=line, project_dir=project_dir, roles=roles, formats=formats)
    if lang == "tokens":
        from .tokens import tokens_block

        return tokens_block(options, body, page=page, line=line)
    return _generate_block(options, body, page=page, line=line, roles=roles, formats=formats)


def _parse_options(text: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for token in shlex.split(text):
        key, _, value = token.partition("=")
        options[key] = options[key] + "\x1f" + value if key == "stop" and key in options else value  # stop= repeats
    return options


def unknown_options(options: dict[str, str], allowed: set[str], what: str, page: str, line: int) -> Problem | None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        return Problem(page, line, f"unknown option {', '.join(map(repr, unknown))} on {'an' if what[0] in 'aeiou' else 'a'} "
                                   f"{what} block",
                       f"the options are: {', '.join(sorted(allowed))}")
    return None


def name_option(options: dict[str, str], page: str, line: int) -> Problem | None:
    if "id" in options and (reason := name_problem(options["id"])):
        return Problem(page, line, reason, "write e.g. id=capital (letters, digits and _, not starting with a digit)")
    return None


def timeout_option(options: dict[str, str], page: str, line: int) -> float | None | Problem:
    if "timeout" not in options:
        return None
    try:
        value = float(options["timeout"])
    except ValueError:
        value = -1
    if seconds_problem(value):
        return Problem(page, line, f"timeout={options['timeout']!r} is not a positive number of seconds", "write e.g. timeout=30")
    return value


def _code_block(options: dict[str, str], body: list[str], *, page: str, line: int, project_dir: Path) -> Block | Problem:
    if problem := unknown_options(options, _CODE_OPTIONS, "python exec", page, line):
        return problem
    timeout = timeout_option(options, page, line)
    if isinstance(timeout, Problem):
        return timeout
    output, show = options.get("output", "text"), options.get("show", "both")
    if output not in OUTPUT_FORMATS:
        return Problem(page, line, f"output={output!r} is not an output format",
                       "use output=text (escaped, the default), output=markdown or output=html (rendered: trusted snippets only)")
    if show not in ("both", "output"):
        return Problem(page, line, f"show={show!r} is not a choice", "use show=both (code and output) or show=output")
    if problem := name_option(options, page, line):
        return problem
    inline = "\n".join(body)
    if options.get("file"):
        if inline.strip():
            return Problem(page, line, "this block has both file= and inline code", "keep one: move the code into the file or drop file=")
        path = (project_dir / options["file"]).resolve()
        if not path.is_file():
            return Problem(page, line, f"snippet file {options['file']!r} not found (looked at {path})",
                           "file= is relative to the folder of mkdocs.yml, e.g. file=\"snippets/compare.py\"")
        text, filename, first = path.read_text(encoding="utf-8"), options["file"], 1
    else:
        text, filename, first = inline, page, line + 1
    code = normalize_code(text)
    if not code:
        return Problem(page, line, "this python exec block has no code", "add code, or remove `exec` to show it without running it")
    first += _leading_blank_lines(textwrap.dedent(text))
    return Block("code", page, line, 0, 0, "", code, filename, first, timeout=timeout,
                 title=options.get("title", options.get("file", "")), output=output, show_source=show == "both",
                 name=options.get("id", ""), options=options)


def _generate_block(options: dict[str, str], body: list[str], *, page: str, line: int,
                    roles: tuple[str, ...], formats: dict[str, str]) -> Block | Problem:
    if problem := unknown_options(options, _GENERATE_OPTIONS, "generate", page, line):
        return problem
    timeout = timeout_option(options, page, line)
    if isinstance(timeout, Problem):
        return timeout
    if problem := name_option(options, page, line):
        return problem
    model = options.get("model", "both")
    chosen = {**MODEL_SETS, "all": tuple(r for r in DISPLAY_ORDER if r in roles)}.get(model)
    chosen = chosen or tuple(m.strip() for m in model.split(","))
    if unknown := [r for r in chosen if r.partition(":")[0] not in roles]:
        return Problem(page, line, f"generate block names unknown model {unknown[0]!r}",
                       f"use model= one of {', '.join(roles)}, a list such as model=base,{roles[-1]}, model=both "
                       "(base and instruct) or model=all (the roles configured under extra.llm_exec.models in mkdocs.yml)")
    columns = _variants(chosen, options, page, line, roles, formats)
    if isinstance(columns, Problem):
        return columns
    template = options.get("template", "auto")
    if template not in TEMPLATES:
        return Problem(page, line, f"template={template!r} is not a template mode",
                       "use template=auto (chat template for models that have one), template=chat or template=raw")
    max_new = 0  # the site's max_new_tokens
    if "max_new_tokens" in options:
        if not options["max_new_tokens"].isdigit() or max_new_tokens_problem(int(options["max_new_tokens"])):
            low, high = MAX_NEW_TOKENS
            return Problem(page, line, f"max_new_tokens={options['max_new_tokens']!r} is not a whole number from {low} to {high}",
                           "write e.g. max_new_tokens=40")
        max_new = int(options["max_new_tokens"])
    prompt = normalize_prompt("\n".join(body))
    if not prompt:
        return Problem(page, line, "this generate block has no prompt", "write the prompt between the fences")
    decoding = _decoding(options, page, line)
    if isinstance(decoding, Problem):
        return decoding
    stop = tuple(_unescape(s) for s in options["stop"].split("\x1f")) if "stop" in options else ()
    request = Request(prompt, template, options.get("system", ""), _unescape(options.get("prefill", "")),  # type: ignore[arg-type]
                      stop=stop, max_new_tokens=max_new, **decoding)  # type: ignore[arg-type]
    return Block("generate", page, line, 0, 0, "", prompt, page, line + 1, timeout=timeout, models=chosen,
                 name=options.get("id", ""), request=request, variants=columns, options=options)


def _variants(chosen: tuple[str, ...], options: dict[str, str], page: str, line: int, roles: tuple[str, ...],
              formats: dict[str, str]) -> tuple[Variant, ...] | Problem:
    """Each model= column parsed: a role, or a variant such as base:tuned-format (the role given the request in the
    tuned model's turn format, as raw text) or base:raw."""
    if len(set(chosen)) != len(chosen):
        return Problem(page, line, f"model={options.get('model')!r} names a model twice", "name each model once")
    try:
        columns = tuple(variant(name, roles, formats) if ":" in name else Variant(name, name, "chat") for name in chosen)
    except Broken as broken:
        return Problem(page, line, f"model= {broken.what}", broken.fix)
    if options.get("generation_prompt") == "false" and (v := next((v for v in columns if v.turn_format), None)):
        return Problem(page, line, f"model={v.name} gives the request in the tuned turn format, which opens the "
                                   "model's turn, so generation_prompt=false cannot apply",
                       "drop generation_prompt=false, or that model")
    return columns


def _unescape(text: str) -> str:
    return re.sub(r"\\[nt\\]", lambda m: _ESCAPES[m.group(0)], text)


def _decoding(options: dict[str, str], page: str, line: int) -> dict[str, object] | Problem:
    """seed= turns on sampling (reproducible: the seed is part of the key); temperature= and top_p= need it;
    repetition_penalty= applies to greedy decoding and sampling alike."""
    found: dict[str, object] = {}
    if "seed" in options:
        if not options["seed"].isdigit():
            return Problem(page, line, f"seed={options['seed']!r} is not a whole number", "write e.g. seed=1")
        found["seed"] = int(options["seed"])
    for name, low, high in (("temperature", 0.0, 5.0), ("top_p", 0.0, 1.0)):
        if name not in options:
            continue
        if "seed" not in options:
            return Problem(page, line, f"{name}= only applies to sampling, and sampling needs a seed to be reproducible",
                           f"add seed=N (e.g. seed=1) to sample, or drop {name}= for greedy decoding")
        try:
            value = float(options[name])
        except ValueError:
            value = -1.0
        if not low < value <= high:
            return Problem(page, line, f"{name}={options[name]!r} is not a number above {low:g} and at most {high:g}",
                           f"write e.g. {name}={0.8 if name == 'temperature' else 0.95}")
        found[name] = value
    if "repetition_penalty" in options:
        try:
            penalty = float(options["repetition_penalty"])
        except ValueError:
            penalty = -1.0
        if not 0.0 < penalty <= 5.0:
            return Problem(page, line, f"repetition_penalty={options['repetition_penalty']!r} is not a number above 0 "
                                       "and at most 5", "write e.g. repetition_penalty=1.3 (1 leaves repeats alone; "
                                                        "above 1 makes tokens already seen less likely)")
        found["repetition_penalty"] = penalty
    if "generation_prompt" in options:
        if options["generation_prompt"] not in ("true", "false"):
            return Problem(page, line, f"generation_prompt={options['generation_prompt']!r} is not true or false",
                           "write generation_prompt=false to leave the assistant's turn unopened")
        found["generation_prompt"] = options["generation_prompt"] == "true"
    return found


def fence_for(text: str) -> str:
    """A backtick fence longer than any run of backticks inside `text`, so the text cannot close it."""
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def normalize_code(text: str) -> str:
    """Dedent, drop trailing spaces and surrounding blank lines: edits that cannot change behaviour."""
    lines = [line.rstrip() for line in textwrap.dedent(text.replace("\r\n", "\n")).split("\n")]
    return "\n".join(lines).strip("\n")


def normalize_prompt(text: str) -> str:
    """Prompts are kept exactly (spaces are tokens) except line endings and surrounding blank lines."""
    return text.replace("\r\n", "\n").strip("\n")


def _leading_blank_lines(text: str) -> int:
    count = 0
    for line in text.split("\n"):
        if line.strip():
            break
        count += 1
    return count
