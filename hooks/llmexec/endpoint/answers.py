"""What a serving engine answered, parsed: text, finish reason, usage and log-probabilities in both API shapes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token with its log-probability and the top alternatives, most likely first."""

    token: str
    logprob: float | None
    top: tuple[tuple[str, float | None], ...]


@dataclass(frozen=True)
class Completion:
    """One generation. finish_reason: "eos", "length", "stop_sequence" (when the server says a stop string matched);
    other server values (tool_calls, abort, ...) pass through unchanged."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    tokens: tuple[TokenLogprob, ...]  # empty unless log-probabilities were asked for
    seconds: float  # wall time of the call, retries included


def finish_reason(choice: Mapping[str, Any]) -> str:
    reason = choice.get("finish_reason")
    if reason != "stop":
        return str(reason or "unknown")
    matched = choice.get("stop_reason", choice.get("matched_stop"))  # vLLM, SGLang: the stop string, a token id, None
    return "stop_sequence" if isinstance(matched, str) and matched else "eos"


def parse_logprobs(raw: Any) -> tuple[TokenLogprob, ...]:
    """Both shapes: chat's (and llama.cpp's completions) content[*], and completions' parallel lists."""
    if not isinstance(raw, dict):
        return ()
    if isinstance(raw.get("content"), list):
        return tuple(
            TokenLogprob(
                str(e.get("token", "")),
                _number(e.get("logprob")),
                _ranked(
                    (str(t.get("token", "")), _number(t.get("logprob")))
                    for t in e.get("top_logprobs") or ()
                    if isinstance(t, dict)
                ),
            )
            for e in raw["content"]
            if isinstance(e, dict)
        )
    tokens, values, tops = raw.get("tokens") or [], raw.get("token_logprobs") or [], raw.get("top_logprobs") or []
    values, tops = [*values, *[None] * len(tokens)], [*tops, *[None] * len(tokens)]  # short lists padded
    return tuple(
        TokenLogprob(str(token), _number(value), _ranked((str(k), _number(v)) for k, v in (top or {}).items()))
        for token, value, top in zip(tokens, values, tops)
    )


def _ranked(pairs: Iterable[tuple[str, float | None]]) -> tuple[tuple[str, float | None], ...]:
    return tuple(sorted(pairs, key=lambda p: -p[1] if p[1] is not None else float("inf")))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def error_message(raw: bytes) -> str:
    """The server's own words from an error body: OpenAI's error.message, FastAPI's detail, else the text."""
    try:
        body = json.loads(raw)
    except ValueError:
        return snippet(raw)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for value in (error, body.get("message"), body.get("detail")):
            if value:
                return str(value)
    return snippet(raw)


def snippet(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return text[:200] + ("…" if len(text) > 200 else "")
