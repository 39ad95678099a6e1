"""Worker side: a Request as a serving engine is sent it (raw text or chat messages, the decoding) and its label."""

from __future__ import annotations

import json
from typing import Any, Literal

from ..core.request import Request, chat_messages
from ..endpoint.answers import Completion
from ..endpoint.client import ServerInfo
from ..errors import with_fix


def payload(p: Request, role: str, artifact: str, chat: bool) -> str | list[dict[str, str]]:
    """A raw prompt (text, for /v1/completions) or chat messages (for /v1/chat/completions)."""
    messages = chat_messages(
        p,
        chat,
        with_fix(
            f"the {role} model ({artifact}) is configured without a chat template (endpoint.chat: false)",
            "use template=raw, or set endpoint.chat: true if the server applies one",
        ),
    )
    if messages is None:
        return p.prompt + p.prefill
    if p.prefill or not p.generation_prompt:
        raise ValueError(
            with_fix(
                f"prefill= and generation_prompt=false need the exact chat text, and the "
                f"{role} model's chat template is applied by the serving engine",
                "write the turn format out with template=raw",
            )
        )
    return messages


def decoding(p: Request, role: str, engine: str) -> dict[str, Any]:
    """The request's decoding as the API's options: greedy (temperature 0) unless seed= asks for a draw. A repetition
    penalty is refused: no engine's is checked against transformers' here."""
    if p.repetition_penalty != 1.0:
        why = (
            "llama.cpp's repeat_penalty covers only the last repeat_last_n tokens (64 by default), where "
            "transformers' covers the prompt and the whole reply"
            if "llama" in engine
            else "no engine's penalty is checked against transformers' here, so none is sent"
        )
        raise ValueError(
            with_fix(
                f"repetition_penalty= on the {role} model ({engine}): "
                f"{why}; the answer would not be the one a local model gives",
                "drop repetition_penalty= for this model, or run the model locally",
            )
        )
    return {
        "max_tokens": p.max_new_tokens,
        "stop": p.stop,
        "seed": p.seed,
        "temperature": p.temperature if p.sampled else 0.0,
        "top_p": p.top_p if p.sampled else 1.0,
    }


def describe(p: Request, info: ServerInfo) -> str:
    engine = f"{info.engine} {info.engine_version}"
    if p.sampled:
        return f"sampled with seed {p.seed} (temperature {p.temperature:g}, top-p {p.top_p:g}) on {engine}"
    return f"greedy (temperature 0) on {engine}"


def shown(messages: list[dict[str, str]]) -> str:
    """The chat messages as sent (the server's template lays them out; the page says so)."""
    return "messages (the serving engine applies the model's chat template):\n" + json.dumps(
        messages, indent=1, ensure_ascii=False
    )


def finish(done: Completion) -> Literal["eos", "length", "stop"]:
    return "length" if done.finish_reason == "length" else "stop" if done.finish_reason == "stop_sequence" else "eos"
