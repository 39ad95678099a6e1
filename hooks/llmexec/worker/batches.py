"""Worker side, batching in one place: requests sorted so that those that may share a batch are next to each other,
grouped into batches, and their outcomes put back in the order they were asked for (generate and rank jobs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..core.protocol import GenerateRequest
from ..core.ranking import RankRequest
from .host import Host

R = TypeVar("R")
T = TypeVar("T")


def in_batch_order(
    requests: Sequence[R], key: Callable[[R], Any], run: Callable[[list[R], list[int]], list[T]]
) -> list[T]:
    """`run` gets the requests sorted by `key` (stable: page order within a key) and each one's index as asked; its
    outcomes, one per request in that sorted order, come back in the order asked."""
    order = sorted(range(len(requests)), key=lambda i: key(requests[i]))
    done = dict(zip(order, run([requests[i] for i in order], order)))
    return [done[index] for index in range(len(requests))]


def grouped(requests: Sequence[R], joins: Callable[[list[R], R], bool]) -> list[list[R]]:
    """Consecutive requests in batches: each joins the batch before it when `joins(batch, request)` says so."""
    batches: list[list[R]] = []
    for request in requests:
        if batches and joins(batches[-1], request):
            batches[-1].append(request)
        else:
            batches.append([request])
    return batches


def generate_key(request: GenerateRequest) -> tuple[Any, ...]:
    return request.batch_key()


def generate_batches(host: Host, requests: list[GenerateRequest]) -> list[list[GenerateRequest]]:
    """Consecutive requests for the same model that decode alike and share a time limit run as one left-padded
    batch; each row keeps its own token limit and stop strings (LoadedModel.generate_batch cuts each row at its own)."""

    def joins(last: list[GenerateRequest], request: GenerateRequest) -> bool:
        on_engine = host.specs[request.model].kind == "endpoint"  # concurrent requests: the engine batches them
        return (
            (on_engine or len(last) < host.batch_size)
            and _shares(last[0], request)
            and (not request.request.alone or on_engine)
        )  # e.g. a local seeded draw: one random stream

    return grouped(requests, joins)


def _shares(first: GenerateRequest, b: GenerateRequest) -> bool:
    """May join the batch that `first` opened: one model, one decoding, one time limit (a batch reports when it is
    done), and a token limit at most twice the first row's (rows come sorted by limit, and every row runs to the
    longest limit: at most half of a batch's decoding steps are cut away)."""
    return (first.model, first.request.decoding_key(), first.timeout) == (
        b.model,
        b.request.decoding_key(),
        b.timeout,
    ) and b.request.max_new_tokens <= 2 * max(first.request.max_new_tokens, 1)


def rank_key(request: RankRequest) -> tuple[str, int]:
    return request.model, len(request.prompt) + len(request.answer)  # similar lengths share a batch: less padding


def rank_batches(host: Host, requests: list[RankRequest]) -> list[list[RankRequest]]:
    """Consecutive requests for the same model run as one left-padded batch of forward passes."""
    return grouped(requests, lambda last, request: last[0].model == request.model and len(last) < host.batch_size)
