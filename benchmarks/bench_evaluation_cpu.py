"""The evaluation's cost in CPU seconds (on demand): the held-out set on the four variants with one torch thread, in the
build's batches (16 prompts of one length), timed with process_time, which a machine shared with other jobs hardly
changes (wall time there can be ten times longer). Prints the CPU seconds of each variant and of all four."""

from __future__ import annotations

import sys
import time

import bench_evaluation as bench


def main() -> None:
    from dataclasses import replace

    import torch
    from mkdocs.config import load_config

    from llmexec.core.settings import load_settings
    from llmexec.worker.models import load_model

    torch.set_num_threads(1)  # no thread waits at barriers for a descheduled partner: CPU time is the work itself
    settings = load_settings(load_config(str(bench.ROOT / "mkdocs.yml")).extra, bench.ROOT)
    models = {
        role: load_model(settings.models[role], settings.model_cache_dir, lambda line: None, 1)
        for role in ("base", "tuned", "instruct")
    }
    items = bench.load_items(bench.ROOT / "tuning" / "evaluation.jsonl")
    total = 0.0
    for variant in bench.VARIANTS:
        model, prompts, stop = bench.prompts_for(variant, items, models)
        cpu = 0.0
        for length in sorted({item.max_new_tokens for item in items}):
            chosen = [p for item, p in zip(items, prompts) if item.max_new_tokens == length]
            for at in range(0, len(chosen), settings.batch_size):
                started = time.process_time()
                model.generate_batch(
                    [replace(p, max_new_tokens=length, stop=stop) for p in chosen[at : at + settings.batch_size]]
                )
                cpu += time.process_time() - started
        total += cpu
        print(f"{variant}: {cpu:.1f} CPU s", flush=True)
    print(f"all four: {total:.1f} CPU s with one torch thread")


if __name__ == "__main__":
    sys.exit(main())
