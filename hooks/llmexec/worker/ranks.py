"""Worker side, rank jobs: recorded answers scored token by token under another model, one forward pass each."""

from __future__ import annotations

import time
from typing import Any, BinaryIO

from ..core.protocol import dumps, to_json
from ..core.ranking import RANK_CAP, RankOutcome, RankRequest
from ..errors import NotTrainedHere
from .batches import rank_batches


def run_rank_child(zygote: Any, requests: list[RankRequest], report: BinaryIO) -> None:
    """The requests, sorted by the zygote, in batches of forward passes (batches.py)."""
    import torch

    torch.set_num_threads(zygote.threads)
    batches = rank_batches(zygote, requests)
    for number, batch in enumerate(batches, 1):
        zygote.log(f"scoring batch {number}/{len(batches)}: {len(batch)} answer(s) under the {batch[0].model} model")
        try:
            outcomes = rank_batch(zygote.model(batch[0].model), batch)
        except NotTrainedHere as exc:
            outcomes = [RankOutcome(status="unexecuted", error=str(exc))] * len(batch)
        except Exception as exc:  # each request of the batch reports it
            outcomes = [RankOutcome(status="error", error=f"{type(exc).__name__}: {exc}")] * len(batch)
        for outcome in outcomes:
            report.write(dumps(to_json(outcome)))
        report.flush()


def encoded(loaded: Any, request: RankRequest) -> tuple[list[int], list[int]]:
    """The prompt's ids (raw text: the tokenizer adds its BOS) and the answer's ids, the end marker last."""
    tokenizer = loaded.tokenizer
    prompt = loaded.encode(request.prompt, chat=False)
    answer = tokenizer(request.answer, add_special_tokens=False)["input_ids"] if request.answer else []
    if request.end:
        answer = answer + [tokenizer.convert_tokens_to_ids(request.end)]
    return prompt, answer


def rank_batch(loaded: Any, batch: list[RankRequest]) -> list[RankOutcome]:
    """Left-padded, with position ids counted from each row's first real token (as a row alone would have them);
    only the logits that predict answer tokens are computed. rank = 1 + tokens strictly more probable, recorded up to
    RANK_CAP (RANK_CAP + 1 means lower): deep in the tail, fp32 near-ties move ranks by one between batchings."""
    import torch

    started = time.perf_counter()
    rows = [encoded(loaded, r) for r in batch]
    tokenizer = loaded.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    width = max(len(p) + len(a) for p, a in rows)
    keep = max(len(a) for _, a in rows) + 1
    ids = torch.tensor([[pad] * (width - len(p) - len(a)) + p + a for p, a in rows])
    mask = torch.tensor([[0] * (width - len(p) - len(a)) + [1] * (len(p) + len(a)) for p, a in rows])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        logits = loaded.model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep).logits
    seconds = round((time.perf_counter() - started) / len(batch), 3)
    outcomes = []
    for row, (request, (prompt, answer)) in enumerate(zip(batch, rows)):
        # logits[row, j] predicts the token at column width - keep + j + 1; the answer occupies the last len(answer)
        probs = torch.softmax(logits[row, keep - 1 - len(answer) : keep - 1].float(), dim=-1)
        scored = []
        for position, token in enumerate(answer):
            p = probs[position]
            top = torch.topk(p, request.top)
            scored.append(
                {
                    "token": tokenizer.decode([token]),
                    "rank": min(int((p > p[token]).sum()) + 1, RANK_CAP + 1),
                    "p": float(p[token]),
                    "top": [[tokenizer.decode([int(i)]), float(v)] for v, i in zip(top.values, top.indices)],
                }
            )
        outcomes.append(
            RankOutcome(
                status="ok",
                input_text=tokenizer.decode(prompt),
                text=request.answer,
                new_tokens=len(answer),
                positions=tuple(scored),
                seconds=seconds,
                batch_size=len(batch),
            )
        )
    return outcomes
