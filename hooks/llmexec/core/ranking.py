"""A recorded answer scored under another model (tokens blocks): the request and outcome exchanged with a runner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..vocabulary import Status

RANK_CAP = 100  # ranks are recorded up to here; 101 stands for "lower than 100th" (measured: ranks near 20,000 to
# 260,000 moved by one between two batchings of the same answers, tail tokens being near-ties in fp32)


@dataclass(frozen=True)
class RankRequest:
    """A recorded answer scored by another model: at each of its tokens, given the prompt and the tokens before it,
    that model's rank and probability of the token and its own top choices (one forward pass, fp32)."""

    model: str  # the role that scores: base
    prompt: str  # raw text, exactly as the answering model received it (its BOS comes from the tokenizer)
    answer: str  # the recorded answer's text
    end: str  # the end-of-turn marker the answer ended with ("" when it was cut off): scored as its last token
    top: int
    timeout: float


@dataclass(frozen=True)
class RankOutcome:
    """A recorded answer scored under a model: each position's rank, probability and top choices."""

    status: Status
    error: str = ""
    input_text: str = ""  # the prompt's tokens, decoded: the answering model's input_text when both are the same
    text: str = ""  # the answer scored
    new_tokens: int = 0  # positions scored (the answer's tokens, and the end marker)
    positions: tuple[dict[str, Any], ...] = ()  # {"token", "rank", "p", "top": [[token, p], ...]} per position
    seconds: float = 0.0
    batch_size: int = 0
