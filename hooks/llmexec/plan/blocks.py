"""Finding executable fences in a page's Markdown and sending each kind to its module: Block values (or Problems)."""

from __future__ import annotations

import re
import textwrap
from dataclasses import replace
from pathlib import Path

from ..vocabulary import OUTPUT_FORMATS
from .generate import generate_block
from .options import Block, Problem, name_option, name_problem, timeout_option, unknown_options

# Block, Problem and name_problem live in options.py; the engine, present/ and resolve/ import them from here
__all__ = ["Block", "Problem", "fence_for", "fence_spans", "find_blocks", "name_problem", "normalize_code"]

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")
_CODE_LANGS = {"python", "py", "python3"}
_CODE_OPTIONS = {"exec", "file", "timeout", "title", "output", "show", "id"}
_SHELL_SPACE = re.compile(r"[ \t\r\n]+")  # what shlex.split splits on


def find_blocks(
    markdown: str,
    *,
    page: str,
    line_offset: int,
    project_dir: Path,
    roles: tuple[str, ...] = ("base", "instruct"),
    formats: dict[str, str] | None = None,
) -> list[Block | Problem]:
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
        body = [line[len(indent) :] if line.startswith(indent) else line.lstrip() for line in lines[i + 1 : close]]
        line_no = line_offset + i + 1
        item = _classify(
            info, body, page=page, line=line_no, project_dir=project_dir, roles=roles, formats=formats or {}
        )
        if item is not None:
            if close >= len(lines):
                item = Problem(page, line_no, "this executable fence is never closed", f"add a closing {fence}")
            if isinstance(item, Block) and item.name:
                if item.name in names:
                    item = Problem(
                        page,
                        line_no,
                        f"id={item.name} is already used by the block at line {names[item.name]}",
                        "give each block on a page its own id",
                    )
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


def _closing_index(lines: list[str], start: int, indent: str, fence: str) -> int:
    for j in range(start, len(lines)):
        stripped = lines[j].strip()
        if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
            return j
    return len(lines)


def _classify(
    info: str,
    body: list[str],
    *,
    page: str,
    line: int,
    project_dir: Path,
    roles: tuple[str, ...],
    formats: dict[str, str],
) -> Block | Problem | None:
    words = info.split(None, 1)
    if not words:
        return None
    lang, rest = words[0].lower(), (words[1] if len(words) > 1 else "")
    if lang not in _CODE_LANGS and lang not in ("generate", "evaluate", "tokens"):
        return None
    try:
        options = _parse_options(rest)
    except ValueError as exc:
        return Problem(
            page, line, f"cannot read the fence options ({exc})", 'quote values with spaces: system="You are terse."'
        )
    if lang in _CODE_LANGS:
        if "exec" not in options:
            return None
        return _code_block(options, body, page=page, line=line, project_dir=project_dir)
    if lang == "evaluate":
        from .evaluate import evaluate_block  # loaded by the first evaluate fence: a build's start-up skips it

        return evaluate_block(
            options, body, page=page, line=line, project_dir=project_dir, roles=roles, formats=formats
        )
    if lang == "tokens":
        from .tokens import tokens_block

        return tokens_block(options, body, page=page, line=line)
    return generate_block(options, body, page=page, line=line, roles=roles, formats=formats)


def _parse_options(text: str) -> dict[str, str]:
    """KEY=VALUE words, split as a shell splits them (shlex, in POSIX mode): values with spaces are quoted."""
    if "'" in text or '"' in text or "\\" in text:
        import shlex  # only options with quotes or escapes need it: without them it splits at whitespace

        tokens = shlex.split(text)
    else:
        tokens = [t for t in _SHELL_SPACE.split(text) if t]
    options: dict[str, str] = {}
    for token in tokens:
        key, _, value = token.partition("=")
        options[key] = options[key] + "\x1f" + value if key == "stop" and key in options else value  # stop= repeats
    return options


def _code_block(
    options: dict[str, str], body: list[str], *, page: str, line: int, project_dir: Path
) -> Block | Problem:
    if problem := unknown_options(options, _CODE_OPTIONS, "python exec", page, line):
        return problem
    timeout = timeout_option(options, page, line)
    if isinstance(timeout, Problem):
        return timeout
    output, show = options.get("output", "text"), options.get("show", "both")
    if output not in OUTPUT_FORMATS:
        return Problem(
            page,
            line,
            f"output={output!r} is not an output format",
            "use output=text (escaped, the default), output=markdown or output=html (rendered: trusted snippets only)",
        )
    if show not in ("both", "output"):
        return Problem(page, line, f"show={show!r} is not a choice", "use show=both (code and output) or show=output")
    if problem := name_option(options, page, line):
        return problem
    inline = "\n".join(body)
    if options.get("file"):
        if inline.strip():
            return Problem(
                page,
                line,
                "this block has both file= and inline code",
                "keep one: move the code into the file or drop file=",
            )
        path = (project_dir / options["file"]).resolve()
        if not path.is_file():
            return Problem(
                page,
                line,
                f"snippet file {options['file']!r} not found (looked at {path})",
                'file= is relative to the folder of mkdocs.yml, e.g. file="snippets/compare.py"',
            )
        text, filename, first = path.read_text(encoding="utf-8"), options["file"], 1
    else:
        text, filename, first = inline, page, line + 1
    code = normalize_code(text)
    if not code:
        return Problem(
            page, line, "this python exec block has no code", "add code, or remove `exec` to show it without running it"
        )
    first += _leading_blank_lines(textwrap.dedent(text))
    return Block(
        "code",
        page,
        line,
        0,
        0,
        "",
        code,
        filename,
        first,
        timeout=timeout,
        title=options.get("title", options.get("file", "")),
        output=output,
        show_source=show == "both",
        name=options.get("id", ""),
        options=options,
    )


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


def _leading_blank_lines(text: str) -> int:
    count = 0
    for line in text.split("\n"):
        if line.strip():
            break
        count += 1
    return count
