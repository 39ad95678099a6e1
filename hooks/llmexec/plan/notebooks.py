"""Notebooks: read one, and turn its code cells into chained blocks (the copy with outputs is made by present)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import LlmExecError, with_fix
from ..vocabulary import seconds_problem
from .blocks import normalize_code
from .options import Block, name_problem


def load(path: Path, page: str) -> dict[str, Any]:
    try:
        notebook: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        notebook["cells"]  # a notebook without cells is not a notebook
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LlmExecError(
            with_fix(f"{page}: cannot read this notebook ({exc})", "open and save it in Jupyter, or fix the JSON")
        ) from None
    return notebook


def code_blocks(notebook: dict[str, Any], page: str, timeout_of: Any = None) -> list[Block]:
    """One Block per code cell; `line` is the cell's number among all cells (1-based), as messages show it."""
    blocks = []
    for number, cell in enumerate(notebook["cells"], 1):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        code = normalize_code("".join(source) if isinstance(source, list) else source)
        if not code:
            continue
        options = cell.get("metadata", {}).get("llm-exec") or {}
        timeout, name = options.get("timeout"), str(options.get("id", ""))
        if timeout is not None and (reason := seconds_problem(timeout)):
            raise LlmExecError(
                with_fix(
                    f"{page}: cell {number}: the cell's timeout {reason}",
                    'set "llm-exec": {"timeout": 30} in the cell\'s metadata (seconds, a number '
                    "above 0), or remove it to use extra.llm_exec.timeout",
                )
            )
        if name and (reason := name_problem(name)):
            raise LlmExecError(
                with_fix(
                    f"{page}: cell {number}: {reason}",
                    'set "llm-exec": {"id": "capital"} in the cell\'s metadata (letters, digits and _)',
                )
            )
        blocks.append(
            Block(
                "code",
                page,
                number,
                0,
                0,
                "",
                code,
                f"{page}: cell {number}",
                1,
                timeout=float(timeout) if timeout is not None else None,
                cell=True,
                name=name,
            )
        )
    return blocks
