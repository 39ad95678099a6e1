"""Requests and outcomes exchanged with a runner, as frozen values that round-trip through JSON lines."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, get_type_hints

from ..vocabulary import FinishReason, Status

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from .ranking import RankOutcome, RankRequest  # tokens pages only: a build's start-up skips them
from .request import Request


@dataclass(frozen=True)
class CodeRequest:
    """One code block of a page; a page's blocks run in order in one fresh namespace."""

    code: str
    filename: str  # named in tracebacks: the page or the snippet file
    first_line: int  # line of `code`'s first line within `filename`
    timeout: float
    display_last: bool = False  # notebook cells: show the value of a final expression, as Jupyter does
    key: str = ""  # the block's cache key: names the checkpoint of the state after it


@dataclass(frozen=True)
class CodeOutcome:
    """What running one code block gave: its printed output, its error, the models it used, rich output and notes."""

    status: Status
    output: str = ""  # stdout and stderr, interleaved as written
    error: str = ""  # traceback or reason; empty when status is ok
    seconds: float = 0.0
    models_used: tuple[str, ...] = ()
    rich: tuple[
        dict[str, str], ...
    ] = ()  # display() and figures: MIME bundles (image/png base64, text/html, text/plain)
    notes: dict[str, Any] = field(default_factory=dict)  # note(name=value): JSON values that checked claims read


@dataclass(frozen=True)
class GenerateRequest:
    """One request for one model (a role: base, instruct, ...)."""

    model: str
    request: Request
    timeout: float

    def batch_key(self) -> tuple[Any, ...]:
        """Where a request sorts among others: by model, decoding and time limit (a batch shares all three: it
        reports when it is done, so its members' `timeout` is the limit of the whole batch), then by token limit and
        text length (Request.row_key), so that a batch holds similar limits and little padding."""
        return self.model, *self.request.decoding_key(), self.timeout, *self.request.row_key()


@dataclass(frozen=True)
class GenerateOutcome:
    """What one model generated for one request: the exact input, the text, why it stopped, and how."""

    status: Status
    error: str = ""
    input_text: str = ""  # the exact token sequence the model received, decoded
    input_tokens: int = 0
    text: str = ""
    finish_reason: FinishReason = ""
    new_tokens: int = 0
    seconds: float = 0.0
    batch_size: int = 0  # prompts in the batch that produced it (0: not generated)
    decoding: str = ""  # "greedy, fp32" or the seeded draw's settings ("" in entries older than sampling)
    threads: int = 0  # the torch threads that ran its batch: stored as the entry's machine's, not in its outcome


class Runner(Protocol):
    """Executes requests. The real one is a worker process; tests inject their own."""

    def begin_build(self, settings: Any) -> None:
        """A build starts: the settings it runs under (models that failed to load are tried again)."""
        ...

    def run_code(self, page: str, blocks: Sequence[CodeRequest], resume: int = 0) -> tuple[int, list[CodeOutcome]]:
        """Run blocks in order in one namespace. With resume=k, the state checkpointed after block k-1 may be
        restored instead of running blocks 0..k-1. Returns (start, outcomes): the outcomes of blocks[start:], where
        start is k if the state was restored and 0 if the page was replayed from its first block."""
        ...

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateOutcome]: ...

    def rank(self, requests: Sequence[RankRequest]) -> list[RankOutcome]:
        """Score recorded answers under another model (token-level views); batched like generation."""
        ...

    def close(self) -> None: ...


T = TypeVar("T", bound="DataclassInstance")


def to_json(value: Any) -> dict[str, Any]:
    return asdict(value)


def from_json(cls: type[T], data: dict[str, Any]) -> T:
    """A value from its JSON: lists become tuples, and a field that holds a value (a request) is read as one."""
    values = {}
    for name in _names(cls):
        if name in data:
            value = data[name]  # the type hints are evaluated (once a class) only where a value may be nested
            values[name] = _read(_hints(cls)[name] if isinstance(value, dict) else None, value)
    return cls(**values)


@functools.cache
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _read(hint: Any, value: Any) -> Any:
    if isinstance(hint, type) and is_dataclass(hint) and isinstance(value, dict):
        return from_json(hint, value)
    if isinstance(value, list):
        return tuple(_read(None, v) for v in value)
    return value


def dumps(message: dict[str, Any]) -> bytes:
    """One message per line; ensure_ascii keeps stray separators out of the stream."""
    return (json.dumps(message, ensure_ascii=True) + "\n").encode("ascii")
