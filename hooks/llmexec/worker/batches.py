"""Worker side, batching in one place: requests sorted so that those that may share a batch are next to each other,
grouped into batches, and their outcomes put back in the order they were asked for (generate and rank jobs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..core.protocol import GenerateRequest, RankRequest
from .host import Host

R = TypeVar("R")
T = TypeVar("T")


def in_batch_order(requests: Sequence[R], key: Callable[[R], Any],
                   run: Callable[[list[R], list[int]], list[T]]) -> list[T]:
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
    """Consecutive requests for the same model and length run as one left-padded batch."""

    def joins(last: list[GenerateRequest], request: GenerateRequest) -> bool:
        on_engine = host.specs[request.model].kind == "endpoint"  # concurrent requests: the engine batches them
        return ((on_engine or len(last) < host.batch_size) and last[0].batch_key() == request.batch_key()
                and (not request.request.alone or on_engine))  # e.g. a local seeded draw: one random stream

    return grouped(requests, joins)


def rank_key(request: RankRequest) -> tuple[str, int]:
    return request.model, len(request.prompt) + len(request.answer)  # similar lengths share a batch: less padding


def rank_batches(host: Host, requests: list[RankRequest]) -> list[list[RankRequest]]:
    """Consecutive requests for the same model run as one left-padded batch of forward passes."""
    return grouped(requests, lambda last, request: last[0].model == request.model and len(last) < host.batch_size)
