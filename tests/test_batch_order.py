"""worker/batches.py, the one place that batches: requests sorted so that those that may share a batch are together,
grouped, and outcomes returned in the order asked (torch-free: no model, no fork)."""

from __future__ import annotations

from dataclasses import dataclass, field

from llmexec.core.models import ModelSpec
from llmexec.core.protocol import GenerateRequest
from llmexec.core.ranking import RankRequest
from llmexec.core.request import Request
from llmexec.worker.batches import generate_batches, generate_key, grouped, in_batch_order, rank_batches, rank_key


@dataclass
class Host:
    """The zygote as batching sees it: the roles' specs and the batch size."""

    batch_size: int = 2
    specs: dict[str, ModelSpec] = field(
        default_factory=lambda: {
            "base": ModelSpec("base", "preset", "base", "", "base"),
            "instruct": ModelSpec("instruct", "preset", "instruct", "", "instruct"),
        }
    )


def ask(model: str, prompt: str, max_new_tokens: int = 8, seed: int | None = None) -> GenerateRequest:
    return GenerateRequest(model, Request(prompt, max_new_tokens=max_new_tokens, seed=seed), 60.0)


def test_outcomes_come_back_in_the_order_asked_whatever_order_they_ran_in() -> None:
    asked = [ask("instruct", "a"), ask("base", "b"), ask("instruct", "c", 16), ask("base", "d")]
    ran: list[list[str]] = []

    def run(ordered: list[GenerateRequest], order: list[int]) -> list[str]:
        ran.append([r.request.prompt for r in ordered])
        assert [asked[i] for i in order] == ordered  # each one's index as asked, for the streamed outcomes
        return [f"reply to {r.request.prompt}" for r in ordered]

    assert in_batch_order(asked, generate_key, run) == ["reply to a", "reply to b", "reply to c", "reply to d"]
    assert ran == [["b", "d", "a", "c"]]  # base first, then instruct by length; page order within a key


def test_generate_batches_join_same_decoding_up_to_the_batch_size_and_keep_a_seeded_draw_alone() -> None:
    ordered = [
        ask("base", "a"),
        ask("base", "b"),
        ask("base", "c"),
        ask("base", "d", 16),  # twice c's limit: one batch, each row cut at its own limit
        ask("base", "g", 33),  # more than twice 16: a batch of its own
        ask("base", "e", seed=1),
        ask("base", "f", seed=1),
    ]
    batches = generate_batches(Host(batch_size=2), ordered)
    assert [[r.request.prompt for r in b] for b in batches] == [["a", "b"], ["c", "d"], ["g"], ["e"], ["f"]]


def test_rank_batches_sort_by_model_then_length_and_join_up_to_the_batch_size() -> None:
    asked = [
        RankRequest("base", "long prompt", "answer", "", 3, 60.0),
        RankRequest("instruct", "p", "a", "", 3, 60.0),
        RankRequest("base", "p", "a", "", 3, 60.0),
        RankRequest("base", "pp", "a", "", 3, 60.0),
    ]
    ordered = sorted(asked, key=rank_key)
    assert [(r.model, r.prompt) for r in ordered] == [
        ("base", "p"),
        ("base", "pp"),
        ("base", "long prompt"),
        ("instruct", "p"),
    ]
    assert [len(b) for b in rank_batches(Host(batch_size=2), ordered)] == [2, 1, 1]


def test_grouped_starts_a_batch_wherever_a_request_does_not_join() -> None:
    assert grouped([1, 1, 2, 2, 2, 1], lambda last, x: last[0] == x and len(last) < 2) == [[1, 1], [2, 2], [2], [1]]
    assert grouped([], lambda last, x: True) == []


def test_a_lanes_threads_follow_the_lanes_still_running_even_in_a_child_forked_before() -> None:
    """worker/lanes.py: two lanes on 2 threads get 1 each; when one is done, the other's child (forked while both
    ran) takes both for its next batch: the count lives in memory the zygote shares with its children."""
    import os

    from llmexec.worker.lanes import ThreadShare

    share = ThreadShare(threads=2, lanes=2)
    ready, go, told = os.pipe(), os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:  # the lane's child: one batch while both lanes run, one after the zygote says the other is done
        first = share.now()
        os.write(ready[1], b"x")
        os.read(go[0], 1)
        os.write(told[1], bytes([first, share.now()]))
        os._exit(0)
    os.read(ready[0], 1)
    share.lane_done()
    os.write(go[1], b"x")
    seen = os.read(told[0], 2)
    os.waitpid(pid, 0)
    assert tuple(seen) == (1, 2)
    assert share.now() == 2 and ThreadShare(threads=4, lanes=3).now() == 1 and ThreadShare(1, 2).now() == 1
    assert ThreadShare(threads=4, lanes=2).now() == 2 and ThreadShare(threads=2, lanes=4).now() == 1


def test_lanes_run_at_once_as_many_as_the_threads_the_largest_first_and_answer_in_the_order_asked() -> None:
    """worker/lanes.py with the zygote's supervised children replaced by a function: three local models on two
    threads run two lanes at once (both must be inside `run` together), never three, and the outcomes come
    back in the order of the requests; one model keeps one lane."""
    import threading
    import time

    from llmexec.worker.lanes import in_lanes

    host = Host()
    host.specs["tuned"] = ModelSpec("tuned", "preset", "tuned", "", "tuned")
    host.threads, host.share = 2, None  # type: ignore[attr-defined]
    asked = [ask("base", "a", 4), ask("base", "b", 4), ask("instruct", "c", 50), ask("tuned", "d", 20)]
    together, inside, most, order = threading.Barrier(2, timeout=10), [0], [0], []
    count = threading.Lock()

    def run(ordered: list[GenerateRequest], indices: list[int]) -> list[str]:
        with count:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            order.append(ordered[0].model)
            first_two = len(order) <= 2
        if first_two:
            together.wait()  # fails (BrokenBarrierError) unless two lanes run at once
            time.sleep(0.3)  # ... and a third lane, were it let in, would start meanwhile
        with count:
            inside[0] -= 1
        return [f"{indices[i]}: {r.request.prompt}" for i, r in enumerate(ordered)]

    assert in_lanes(host, asked, [0, 1, 2, 3], run) == ["0: a", "1: b", "2: c", "3: d"]
    assert most[0] == 2 and order[0] == "instruct"  # the lane with the most tokens to make starts first
    assert set(order) == {"base", "instruct", "tuned"} and host.share is None  # type: ignore[attr-defined]
    calls: list[list[int]] = []
    one_lane = lambda o, i: calls.append(i) or [str(x) for x in i]  # noqa: E731
    assert in_lanes(host, asked[:2], [5, 6], one_lane) == ["5", "6"]  # one model
    host.batch_size = 1  # one prompt at a time: one model at a time too
    assert in_lanes(host, asked, [0, 1, 2, 3], one_lane) == ["0", "1", "2", "3"] and calls == [[5, 6], [0, 1, 2, 3]]
