"""Checked claims, found: `[a sentence about an output]{check: expression}` in a page's prose (evaluated in present)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from ..vocabulary import CLAIM_HELPERS
from .blocks import fence_spans

_OPEN = re.compile(r"\]\{check:")


@dataclass(frozen=True)
class Claim:
    """A sentence of prose and the Python expression that must hold over its page's recorded outcomes."""

    page: str
    line: int  # 1-based line of the sentence's opening bracket in the page's source file
    start: int  # character span of the whole `[...]{check: ...}` in the Markdown handed to the engine
    end: int
    sentence: str  # the Markdown between the brackets, shown to readers
    expression: str
    cell: int = 0  # in a notebook: the Markdown cell's number; `line` is then the line within the cell

    @property
    def where(self) -> str:
        return f"{self.page}: cell {self.cell}, line {self.line}" if self.cell else f"{self.page}:{self.line}"

    def names(self) -> list[str]:
        """The block ids the expression reads (its free names that are not helpers)."""
        try:
            tree = ast.parse(self.expression, mode="eval")
        except SyntaxError:
            return []
        bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        found = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
        return list(dict.fromkeys(n for n in found if n not in bound and n not in CLAIM_HELPERS))


def find_claims(
    markdown: str, *, page: str, line_offset: int, cell: int = 0, fences: list[tuple[int, int]] | None = None
) -> list[Claim]:
    """Every `[sentence]{check: expression}` outside fenced code and inline code, in order."""
    lines = markdown.split("\n")
    starts = [0]
    for text in lines:
        starts.append(starts[-1] + len(text) + 1)
    masked = _mask(
        markdown,
        [(starts[a], starts[min(b, len(lines))]) for a, b in (fences if fences is not None else fence_spans(markdown))],
    )
    found: list[Claim] = []
    for match in _OPEN.finditer(masked):
        close = match.start()
        opening = _opening_bracket(masked, close)
        end = _closing_brace(masked, match.end())
        if opening is None or end is None:
            continue
        if found and opening < found[-1].end:
            continue
        sentence = markdown[opening + 1 : close]
        expression = " ".join(markdown[match.end() : end].split())
        line = line_offset + markdown.count("\n", 0, opening) + 1
        found.append(Claim(page, line, opening, end + 1, sentence, expression, cell))
    return found


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    """Fenced blocks and inline code replaced by spaces (same length), so no claim is found inside them."""
    chars = list(text)
    for a, b in spans:
        chars[a:b] = [c if c == "\n" else " " for c in chars[a:b]]
    masked = "".join(chars)
    return re.sub(r"(`+)(?:(?!\1).)+?\1", lambda m: " " * len(m.group(0)), masked, flags=re.S)


def _opening_bracket(text: str, close: int) -> int | None:
    """The `[` that balances the `]` at `close`, within one paragraph."""
    depth = 0
    for i in range(close - 1, -1, -1):
        char = text[i]
        if char == "]":
            depth += 1
        elif char == "[":
            if depth == 0:
                return i
            depth -= 1
        elif char == "\n" and text[max(0, i - 1)] == "\n":
            return None
    return None


def _closing_brace(text: str, start: int) -> int | None:
    """The `}` that ends the expression: braces balanced, quotes respected, within one paragraph."""
    depth, quote, i = 0, "", start
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return i
            depth -= 1
        elif char == "\n" and text[i + 1 : i + 2] == "\n":
            return None
        i += 1
    return None
