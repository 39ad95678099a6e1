"""Tuning benchmark (on demand: `make bench-tuning`). Trains the site's tuned recipe (from mkdocs.yml) into an empty
model cache and prints: training time and peak memory against the targets (5 minutes, 6 GB), then the same for the
preferred model (DPO from the tuned one; targets 180 s, 6 GB) if mkdocs.yml configures it, a second build's
training time (reuse: 0 s), and how often base, tuned and instruct end their turn by themselves on the pages' own
prompts (held out: none of them is in the training data)."""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from mkdocs.config import load_config

from llmexec.core.settings import load_settings
from llmexec.plan.blocks import Block, find_blocks


def held_out_prompts(roles: tuple[str, ...]) -> list[str]:
    """The prompts of the site's generate blocks that are requests (not raw continuations), each once."""
    found: dict[str, None] = {}
    for page in sorted((ROOT / "docs").glob("*.md")):
        for block in find_blocks(page.read_text(), page=page.name, line_offset=0, project_dir=ROOT, roles=roles):
            if (
                isinstance(block, Block)
                and block.kind == "generate"
                and block.request.template != "raw"
                and not block.request.prefill
            ):
                found[block.source] = None
    return list(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args()
    config = load_config(str(ROOT / "mkdocs.yml"))
    settings = load_settings(config.extra, ROOT)
    spec = settings.models.get("tuned")
    if spec is None:
        sys.exit("mkdocs.yml configures no tuned model (extra.llm_exec.models.tuned)")

    import torch

    from llmexec.worker.models import load_model, model_folder
    from llmexec.worker.tuned import tuned_folder

    torch.set_num_threads(settings.threads)

    def start_folder(start):  # the converted base
        return model_folder(start, settings.model_cache_dir, print)

    with tempfile.TemporaryDirectory(prefix="bench-tuning-") as scratch:
        cache = Path(scratch)
        started = time.perf_counter()
        folder = tuned_folder(spec, cache, lambda line: print("  " + line, flush=True), settings.threads, start_folder)
        first = time.perf_counter() - started
        peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e9  # the training process
        preferred = settings.models.get("preferred")
        if preferred is not None:  # DPO from the tuned model just trained (the start resolves into this cache)
            started = time.perf_counter()
            dpo = tuned_folder(
                preferred,
                cache,
                lambda line: print("  " + line, flush=True),
                settings.threads,
                lambda start: tuned_folder(start, cache, print, settings.threads, start_folder),
            )
            dpo_seconds = time.perf_counter() - started
            dpo_peak_gb = json.loads((dpo / "training.json").read_text())["peak_memory_gb"]
        started = time.perf_counter()
        tuned_folder(spec, cache, print, settings.threads, start_folder)
        second = time.perf_counter() - started
        print(f"\ntraining ({folder.name}): {first:.0f} s, target 300 s: {first / 300:.2f}x of the budget")
        print(f"peak memory of the training process: {peak_gb:.2f} GB, target 6 GB: {peak_gb / 6:.2f}x of the budget")
        if preferred is not None:
            print(
                f"preference tuning, DPO ({dpo.name}): {dpo_seconds:.0f} s, target 180 s: {dpo_seconds / 180:.2f}x of "
                f"the budget; tuned model: {first:.0f} s (ratio DPO/tuned {dpo_seconds / first:.2f}, same run)"
            )
            print(
                f"peak memory of the DPO process: {dpo_peak_gb:.2f} GB, target 6 GB: {dpo_peak_gb / 6:.2f}x of the "
                f"budget; tuned model's training process: {peak_gb:.2f} GB"
            )
        prompts = held_out_prompts(tuple(settings.models))
        rates = {}
        for role in ("base", "tuned", "instruct"):
            model = load_model(settings.models[role], cache if role == "tuned" else settings.model_cache_dir, print)
            ended = 0
            for prompt in prompts:
                ended += model.generate(prompt, max_new_tokens=args.max_new_tokens).finish_reason == "eos"
            rates[role] = ended
        print(f"second build: {second:.2f} s of training (reused)")
        print(
            f"ended their turn by themselves on the {len(prompts)} held-out prompts of the pages "
            f"(max_new_tokens={args.max_new_tokens}): " + ", ".join(f"{r} {n}/{len(prompts)}" for r, n in rates.items())
        )


if __name__ == "__main__":
    main()
