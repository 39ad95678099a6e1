"""Worker side: decoding on a loaded model: a left-padded batch (its Generations, stop sequences), the next token."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
from transformers import GenerationConfig

from ..core.request import Request


@dataclass(frozen=True)
class Generation:
    """What one model produced for one prompt. str() gives the generated text."""

    model: str
    artifact: str
    input_text: str
    input_tokens: int
    text: str
    finish_reason: Literal["eos", "length", "stop"]
    new_tokens: int
    seconds: float
    decoding: str = "greedy, fp32"

    def __str__(self) -> str:
        return self.text


class Decodable(Protocol):
    """What decoding uses of a loaded model (worker/models.py): its tokenizer and weights, and how it lays out a
    request."""

    role: str
    artifact: str
    tokenizer: Any
    model: Any

    def _format(self, p: Request) -> tuple[str, bool]: ...
    def encode(self, text: str, *, chat: bool) -> list[int]: ...


def generate_batch(loaded: Decodable, prompts: list[Request]) -> list[Generation]:
    """One left-padded batch run to its longest row's limit, each row cut at its own (LoadedModel.generate_batch)."""
    first = prompts[0]  # the decoding all rows share
    if first.alone and len(prompts) > 1:
        raise ValueError(f"{first.describe()} runs alone: batch it with nothing")
    if any(p.decoding_key() != first.decoding_key() for p in prompts):
        raise ValueError("the rows of a batch must decode alike (Request.decoding_key): batch them apart")
    started = time.perf_counter()
    tokenizer = loaded.tokenizer
    encoded = []
    for p in prompts:
        text, chat = loaded._format(p)
        encoded.append(loaded.encode(text, chat=chat))
    eos = eos_ids(loaded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos or {0})
    width = max(len(ids) for ids in encoded)
    ids = torch.tensor([[pad] * (width - len(row)) + row for row in encoded])
    mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in encoded])
    sampled = first.sampled
    config = GenerationConfig(
        max_new_tokens=max(p.max_new_tokens for p in prompts),
        do_sample=sampled,
        num_beams=1,
        temperature=first.temperature if sampled else None,
        top_p=first.top_p if sampled else None,
        top_k=0 if sampled else None,
        repetition_penalty=first.repetition_penalty,
        eos_token_id=sorted(eos) or None,
        pad_token_id=pad,
    )
    if sampled:
        torch.manual_seed(first.seed)
    with torch.inference_mode():
        out = loaded.model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
    seconds = round((time.perf_counter() - started) / len(prompts), 3)
    results = []
    for row, input_ids, p in zip(out[:, width:].tolist(), encoded, prompts):
        row = row[: p.max_new_tokens]  # this row's own limit: the tokens it would have had alone
        end = next((i for i, token in enumerate(row) if token in eos), None)
        new = row[: end + 1] if end is not None else row
        finish: Literal["eos", "length", "stop"] = "eos" if end is not None else "length"
        shown = tokenizer.decode(new[:-1] if finish == "eos" else new)
        cut = _stop_at(tokenizer, new, p.stop)
        if cut is not None:
            shown, new, finish = cut[0], new[: cut[1]], "stop"
        results.append(
            Generation(
                loaded.role,
                loaded.artifact,
                tokenizer.decode(input_ids),
                len(input_ids),
                shown,
                finish,
                len(new),
                seconds,
                p.describe(),
            )
        )
    return results


def top_next_tokens(loaded: Decodable, request: Request, k: int) -> list[tuple[str, float]]:
    """The k most likely next tokens after the request laid out, with their probabilities (LoadedModel.next_tokens)."""
    formatted, chat = loaded._format(request)
    ids = torch.tensor([loaded.encode(formatted, chat=chat)])
    with torch.inference_mode():
        logits = loaded.model(input_ids=ids).logits[0, -1]
    probs = torch.softmax(logits.float(), dim=-1)
    top = torch.topk(probs, k)
    return [(loaded.tokenizer.decode([i]), round(float(p), 4)) for p, i in zip(top.values, top.indices)]


def eos_ids(loaded: Decodable) -> set[int]:
    found: set[int] = set()
    for value in (loaded.model.generation_config.eos_token_id, loaded.tokenizer.eos_token_id):
        if isinstance(value, int):
            found.add(value)
        elif value:
            found.update(value)
    return found


def _stop_at(tokenizer: Any, new: list[int], stop: tuple[str, ...]) -> tuple[str, int] | None:
    """Where the first stop sequence appears: (the text before it, the number of tokens that reached it)."""
    if not stop:
        return None
    full = tokenizer.decode(new)
    hits = [(full.find(s), s) for s in stop if s and s in full]
    if not hits:
        return None
    index, _ = min(hits)
    for count in range(1, len(new) + 1):  # the fewest tokens whose text reaches past the stop sequence's start
        if len(tokenizer.decode(new[:count])) > index:
            return full[:index], count
    return full[:index], len(new)
