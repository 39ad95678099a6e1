"""Worker side: a generate job's local models each in their own lane, the lanes' children at once, threads shared."""

from __future__ import annotations

import mmap
import struct
import threading
from collections.abc import Callable
from itertools import groupby
from typing import Any

from .host import Host


class ThreadShare:
    """The torch threads a lane's child may use for its next batch: the worker's `threads` split between the lanes
    that run at once, at most one lane a thread (1 each for 2 or more lanes on 2 threads; all of them again for
    the last lane). The count of lanes not done lives in an anonymous shared mapping made before the children
    fork, so each child reads the current one."""

    def __init__(self, threads: int, lanes: int) -> None:
        self.threads = threads
        self._running = mmap.mmap(-1, 8)  # MAP_SHARED: the children see the zygote's writes
        self._lock = threading.Lock()
        self._set(lanes)

    def _set(self, lanes: int) -> None:
        self._running[:8] = struct.pack("q", lanes)

    def lane_done(self) -> None:
        with self._lock:
            self._set(max(0, struct.unpack("q", self._running[:8])[0] - 1))

    def now(self) -> int:
        left = struct.unpack("q", self._running[:8])[0]
        return max(1, self.threads // max(1, min(left, self.threads)))


def threads_now(host: Host) -> int:
    """The torch threads a child may use for its next batch: all of the worker's, unless lanes share them."""
    return host.share.now() if host.share else host.threads


def in_lanes(
    host: Host, requests: list[Any], indices: list[int], run: Callable[[list[Any], list[int]], list[Any]]
) -> list[Any]:
    """`requests` come sorted by model (batches.generate_key). Each model's requests form a lane, and with two or
    more local models the lanes run (`run`: their forked children, supervised) from threads of the zygote, as
    many at once as the worker has threads, the one with the most tokens to make first: two small models decoding
    on one thread each finish sooner than one after the other on two (measured on the 10-page benchmark site:
    9.4-10.1 s against 14.0-15.1 s, the same texts). A single model, threads: 1, or batch_size: 1 (one prompt at a
    time: the least memory, as that setting promises) keeps one lane on all the threads. The outcomes come back in
    the order of `requests`."""
    lanes = [list(group) for _, group in groupby(range(len(requests)), key=lambda i: requests[i].model)]
    local = {n for n, lane in enumerate(lanes) if host.specs[requests[lane[0]].model].kind != "endpoint"}
    if len(local) < 2 or host.threads < 2 or host.batch_size < 2:
        return run(requests, indices)
    share = host.share = ThreadShare(host.threads, len(local))
    # local lanes, the most tokens first; a serving engine's lane waits on the network
    waiting = sorted(local, key=lambda n: (-sum(requests[p].request.max_new_tokens for p in lanes[n]), n))
    results: dict[int, list[Any]] = {}
    failures: list[BaseException] = []
    take = threading.Lock()

    def one(number: int) -> None:
        positions = lanes[number]
        try:
            results[number] = run([requests[p] for p in positions], [indices[p] for p in positions])
        except BaseException as exc:  # raised again in the zygote's own thread, once no lane runs
            failures.append(exc)
        finally:
            if number in local:
                share.lane_done()

    def runner() -> None:
        while True:
            with take:
                if not waiting or failures:
                    return
                number = waiting.pop(0)
            one(number)

    threads = [threading.Thread(target=runner, name=f"lane-{n}") for n in range(min(host.threads, len(local)))] + [
        threading.Thread(target=one, args=(n,), name=f"engine-lane-{n}") for n in range(len(lanes)) if n not in local
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        host.share = None
    if failures:
        raise failures[0]
    return [outcome for n in range(len(lanes)) for outcome in results[n]]
