"""Worker side, generate jobs: prompts run as left-padded batches (a seeded draw alone), in a forked child."""

from __future__ import annotations

from typing import Any, BinaryIO

from ..core.protocol import GenerateOutcome, GenerateRequest, dumps, to_json
from ..errors import NotTrainedHere
from .batches import generate_batches
from .host import Host
from .lanes import threads_now


def run_generate_child(zygote: Host, requests: list[GenerateRequest], report: BinaryIO) -> None:
    """The requests, sorted by the zygote, in batches (batches.py)."""
    import torch

    batches = generate_batches(zygote, requests)
    for number, batch in enumerate(batches, 1):
        threads = threads_now(zygote)  # all of them, or this lane's share while another model's lane runs
        torch.set_num_threads(threads)
        zygote.log(
            f"generating batch {number}/{len(batches)}: {batch[0].model} model, {len(batch)} prompt(s), "
            f"{max(r.request.max_new_tokens for r in batch)} new tokens at most, {threads} thread(s)"
        )
        for outcome in _generate_batch(zygote, batch, threads):
            report.write(dumps(to_json(outcome)))
        report.flush()


def _generate_batch(zygote: Host, batch: list[GenerateRequest], threads: int) -> list[GenerateOutcome]:
    requests = [r.request for r in batch]
    try:
        model = zygote.model(batch[0].model)
        if hasattr(model, "generate_each"):  # a serving engine: each request succeeds or fails on its own
            return [_outcome(g, len(batch), threads) for g in model.generate_each(requests)]
        results = model.generate_batch(requests)
    except Exception as exc:
        if len(batch) > 1:  # find which prompt failed (e.g. system= without a chat template): run them alone
            return [o for request in batch for o in _generate_batch(zygote, [request], threads)]
        return [_outcome(exc, 1, threads)]
    return [_outcome(g, len(batch), threads) for g in results]


def _outcome(done: Any, batch_size: int, threads: int) -> GenerateOutcome:
    """A Generation as an outcome, or an exception as an error outcome (a tuned model a preview may not train:
    not executed, with the reason)."""
    if isinstance(done, NotTrainedHere):
        return GenerateOutcome(status="unexecuted", error=str(done))
    if isinstance(done, Exception):
        return GenerateOutcome(status="error", error=f"{type(done).__name__}: {done}")
    return GenerateOutcome(
        status="ok",
        input_text=done.input_text,
        input_tokens=done.input_tokens,
        text=done.text,
        finish_reason=done.finish_reason,
        new_tokens=done.new_tokens,
        seconds=done.seconds,
        batch_size=batch_size,
        decoding=done.decoding,
        threads=threads,
    )
