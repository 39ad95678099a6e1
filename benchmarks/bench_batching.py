"""Generation batching, measured in one process on the real default models: the benchmark site's prompts alone, in
batches grouped as before issue 21 (exact token limit), and one batch per model with a limit per row; CPU seconds
(user + system of this process, all threads) side by side, the share spent outside the models' forward passes, and
each model's batch throughput (the site's token floor that bench.py divides a cold build by)."""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import SUBJECTS

MODELS = {"base": "gemma-3-270m", "instruct": "smollm2-135m-instruct"}


def cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


@dataclass
class Timed:
    cpu: float = 0.0
    wall: float = 0.0
    forward_cpu: float = 0.0  # inside the model's forward passes
    texts: tuple[str, ...] = ()


def load(role: str):
    from llmexec.core.models import ModelSpec
    from llmexec.worker.models import load_model

    cache = Path(os.environ.get("LLMX_MODEL_CACHE", Path.home() / ".cache" / "llm-exec" / "models"))
    return load_model(ModelSpec(role, "preset", MODELS[role]), cache, lambda _: None)


def site_requests(pages: int, limits: tuple[int, ...]) -> dict[str, list]:
    """The benchmark site's generations per model (bench.page()), with token limits cycling through `limits`."""
    from llmexec.core.request import Request

    facts = [f"Three facts about {SUBJECTS[i % len(SUBJECTS)]} (list {i}):" for i in range(pages)]
    why = [f"In one sentence, why do people like {SUBJECTS[i % len(SUBJECTS)]}? (question {i})" for i in range(pages)]
    limit = lambda i: limits[i % len(limits)]  # noqa: E731
    return {
        "base": [Request(p, max_new_tokens=limit(i)) for i, p in enumerate(facts)],
        "instruct": [
            Request(p, max_new_tokens=limit(i + j))
            for i, pair in enumerate(zip(facts, why))
            for j, p in enumerate(pair)
        ],
    }


def batches_before(requests: list, size: int) -> list[list]:
    """Before issue 21: sorted by token limit, a batch holds one exact limit."""
    out: list[list] = []
    for r in sorted(requests, key=lambda r: r.max_new_tokens):
        if out and len(out[-1]) < size and out[-1][0].max_new_tokens == r.max_new_tokens:
            out[-1].append(r)
        else:
            out.append([r])
    return out


def batches_now(requests: list, size: int) -> list[list]:
    """Now: sorted by Request.batch_key (decoding, limit, length); a batch holds limits up to twice its first's."""
    out: list[list] = []
    for r in sorted(requests, key=lambda r: r.batch_key()):
        if out and len(out[-1]) < size and r.max_new_tokens <= 2 * out[-1][0].max_new_tokens:  # generate._shares
            out[-1].append(r)
        else:
            out.append([r])
    return out


def run(model, batches: list[list]) -> Timed:
    """Every batch through LoadedModel.generate_batch, timing the forward passes inside it."""
    inner = model.model.forward
    spent = [0.0]

    def forward(*args, **kwargs):
        started = cpu()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[0] += cpu() - started

    model.model.forward = forward
    try:
        c0, w0 = cpu(), time.perf_counter()
        texts = tuple(g.text for batch in batches for g in model.generate_batch(batch))
        return Timed(cpu() - c0, time.perf_counter() - w0, spent[0], texts)
    finally:
        del model.model.forward


def throughput(model, rows: int = 32, new: int = 16) -> dict[str, float]:
    """Tokens per second of a full batch (`rows`: the site's batch_size), wall and CPU, measured the way a build
    decodes: the same batch through generate_batch with 1 new token (the prompts' forward pass, which keeps only the
    last position's logits, and one step) and with `new`; decoding is the extra tokens over the extra time. A
    forward pass that keeps every position's logits (what scoring recorded answers does) is measured apart: on a
    262k vocabulary its output layer is most of the cost, so it must not stand in for a prompt's forward pass."""
    import torch

    from llmexec.core.request import Request

    def requests(limit: int) -> list:
        return [
            Request(f"Three facts about {SUBJECTS[i % len(SUBJECTS)]} (list {i}):", max_new_tokens=limit)
            for i in range(rows)
        ]

    ids = [model.encode(text, chat=chat) for text, chat in (_formatted(model, r) for r in requests(1))]
    prompt_tokens = sum(len(i) for i in ids)
    width = min(len(i) for i in ids)
    batch = torch.tensor([i[:width] for i in ids])
    model.generate_batch(requests(2))  # warm-up
    timed: dict[int, tuple[float, float, int]] = {}
    for limit in (1, new, 1, new):  # twice each, alternately; the faster of the two is kept
        c0, w0 = cpu(), time.perf_counter()
        made = sum(g.new_tokens for g in model.generate_batch(requests(limit)))
        wall, spent = time.perf_counter() - w0, cpu() - c0
        timed[limit] = min(timed.get(limit, (wall, spent, made)), (wall, spent, made))
    with torch.inference_mode():
        c0, w0 = cpu(), time.perf_counter()
        model.model(input_ids=batch)
        forward_cpu, forward_wall = cpu() - c0, time.perf_counter() - w0
    (w1, c1, m1), (wn, cn, mn) = timed[1], timed[new]
    return {
        "decode": (mn - m1) / max(wn - w1, 1e-9),
        "prefill": prompt_tokens / w1,
        "forward": rows * width / forward_wall,
        "decode_cpu": (mn - m1) / max(cn - c1, 1e-9),
        "prefill_cpu": prompt_tokens / c1,
        "forward_cpu": rows * width / forward_cpu,
        "rows": rows,
    }


def _formatted(model, request) -> tuple[str, bool]:
    text, chat = model._format(request)
    return text, chat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--limits", type=int, nargs="+", default=[8, 12, 16, 24], help="token limits, cycled")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--throughput", action="store_true", help="print each model's batch throughput as JSON")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.throughput:
        print(json.dumps({role: throughput(load(role), rows=args.batch_size) for role in MODELS}))
        return
    requests = site_requests(args.pages, tuple(args.limits))
    totals: dict[str, Timed] = {}
    ways: dict[str, Callable[[list], list[list]]] = {
        "alone": lambda rs: [[r] for r in rs],
        "batched, one limit a batch (before)": lambda rs: batches_before(rs, args.batch_size),
        "batched, a limit per row (now)": lambda rs: batches_now(rs, args.batch_size),
    }
    for role in MODELS:
        model = load(role)
        model.generate_batch(requests[role][:2])  # warm-up
        for name, make in ways.items():
            batches = make(requests[role])
            timed = run(model, batches)
            total = totals.setdefault(name, Timed())
            total.cpu, total.wall, total.forward_cpu = (
                total.cpu + timed.cpu,
                total.wall + timed.wall,
                total.forward_cpu + timed.forward_cpu,
            )
            by_prompt = dict(zip([r for b in batches for r in b], timed.texts))
            total.texts += tuple(by_prompt[r] for r in requests[role])
            print(
                f"{role:8} {name:38} {len(batches):3} batches  CPU {timed.cpu:7.2f} s  wall {timed.wall:7.2f} s  "
                f"outside forward {1 - timed.forward_cpu / timed.cpu:5.1%}",
                flush=True,
            )
    alone = totals["alone"]
    for name, timed in totals.items():
        same = "texts identical to alone" if timed.texts == alone.texts else "TEXTS DIFFER FROM ALONE"
        print(
            f"{name:38} CPU {timed.cpu:7.2f} s ({alone.cpu / timed.cpu:.2f}x of alone), wall {timed.wall:7.2f} s "
            f"({alone.wall / timed.wall:.2f}x); outside forward {1 - timed.forward_cpu / timed.cpu:.1%}; {same}"
        )
    print(
        f"load {os.getloadavg()[0]:.1f}; {args.pages} pages, limits {args.limits}, batch size {args.batch_size}, "
        f"{args.threads} threads"
    )


if __name__ == "__main__":
    main()
