"""Evaluation benchmark (on demand: `make bench-evaluation`). Runs the held-out evaluation set (tuning/evaluation.jsonl)
on four variants with the site's real models, in process, greedy fp32, in left-padded batches: the base model given
raw text, the base model given exactly the turn-formatted text the tuned model gets, the tuned model, the instruct
model. Prints successes/n per kind and variant with 95% Wilson intervals, and the generation time of each variant
(what the evaluation would add to a cold build); writes every reply and its score to --out."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "hooks"))
sys.path.insert(0, str(ROOT / "tuning"))

from mkdocs.config import load_config

from llmexec.core.settings import load_settings
from scorers import KINDS, Item, load_items, raw_prompt, score, wilson

VARIANTS = ("base raw", "base + template", "tuned", "instruct")
END_OF_TURN = (
    "<end_of_turn>"  # the tuned model stops on it (its end-of-sequence token); the base model is stopped there
)


def prompts_for(variant: str, items: list[Item], models: dict) -> tuple[object, list, tuple[str, ...]]:
    """The model, one Prompt per item and the stop strings a variant uses."""
    from llmexec.core.request import Request as Prompt

    if variant == "base raw":
        return models["base"], [Prompt(raw_prompt(item), template="raw") for item in items], ()
    if variant == "base + template":
        base, tuned = models["base"], models["tuned"]
        prompts = []
        for item in items:
            text = tuned.format_prompt(item.chat())
            assert text.startswith(base.tokenizer.bos_token)  # the raw path adds the BOS itself
            prompt = Prompt(text[len(base.tokenizer.bos_token) :], template="raw")
            assert base.encode(prompt.prompt, chat=False) == tuned.encode(text, chat=True), item.id  # the same ids
            prompts.append(prompt)
        return base, prompts, (END_OF_TURN,)
    role = variant
    return models[role], [Prompt(messages=item.messages, template="chat") for item in items], ()


def run_variant(
    variant: str, items: list[Item], models: dict, batch_size: int, log: Callable[[str], None]
) -> tuple[list[dict], float]:
    """Every item's reply and score for one variant, batched by length, and the seconds generation took."""
    from dataclasses import replace

    model, prompts, stop = prompts_for(variant, items, models)
    rows: dict[str, dict] = {}
    started = time.perf_counter()
    for length in sorted({item.max_new_tokens for item in items}):
        chosen = [(item, prompt) for item, prompt in zip(items, prompts) if item.max_new_tokens == length]
        for at in range(0, len(chosen), batch_size):
            batch = chosen[at : at + batch_size]
            t = time.perf_counter()
            results = model.generate_batch([replace(p, max_new_tokens=length, stop=stop) for _, p in batch])
            log(f"  {variant}: {len(batch)} prompts, {length} tokens at most: {time.perf_counter() - t:.1f} s")
            for (item, _), result in zip(batch, results):
                rows[item.id] = {
                    "id": item.id,
                    "kind": item.kind,
                    "variant": variant,
                    "reply": result.text,
                    "finish": result.finish_reason,
                    "new_tokens": result.new_tokens,
                    "success": score(item, result.text),
                }
    return [rows[item.id] for item in items], time.perf_counter() - started


def table(items: list[Item], rows: list[dict], variants: list[str]) -> str:
    """successes/n [Wilson 95%] per kind (rows) and variant (columns), and all kinds together."""
    kinds = [kind for kind in KINDS if any(item.kind == kind for item in items)] + ["all"]
    lines = [f"{'kind':<14}" + "".join(f"{v:>24}" for v in variants)]
    for kind in kinds:
        cells = []
        for variant in variants:
            chosen = [r for r in rows if r["variant"] == variant and kind in ("all", r["kind"])]
            k, n = sum(r["success"] for r in chosen), len(chosen)
            low, high = wilson(k, n)
            cells.append(f"{k:>3}/{n:<3} [{low:.2f}, {high:.2f}]")
        lines.append(f"{kind:<14}" + "".join(f"{c:>24}" for c in cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", type=Path, default=ROOT / "tuning" / "evaluation.jsonl")
    parser.add_argument("--out", type=Path, default=Path("bench-evaluation.json"))
    parser.add_argument("--batch-size", type=int, default=None, help="default: the site's batch_size")
    parser.add_argument("--threads", type=int, default=None, help="torch threads; default: the site's threads")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="a comma-separated subset of: " + ", ".join(VARIANTS)
    )
    parser.add_argument("--kinds", default="", help="a comma-separated subset of the kinds (default: all)")
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",")]
    if not set(variants) <= set(VARIANTS):
        sys.exit(f"--variants: choose from {', '.join(VARIANTS)}")
    needed = {"base raw": {"base"}, "base + template": {"base", "tuned"}, "tuned": {"tuned"}, "instruct": {"instruct"}}
    settings = load_settings(load_config(str(ROOT / "mkdocs.yml")).extra, ROOT)
    items = [item for item in load_items(args.set) if not args.kinds or item.kind in args.kinds.split(",")]

    import torch

    from llmexec.worker.models import load_model

    threads = args.threads or settings.threads
    torch.set_num_threads(threads)
    models = {}
    for role in [r for r in ("base", "tuned", "instruct") if any(r in needed[v] for v in variants)]:
        started = time.perf_counter()
        models[role] = load_model(
            settings.models[role], settings.model_cache_dir, lambda line: print("  " + line, flush=True), threads
        )
        print(f"loaded {role} ({models[role].artifact}) in {time.perf_counter() - started:.1f} s", flush=True)
    rows, seconds = [], {}
    for variant in variants:
        done, seconds[variant] = run_variant(
            variant, items, models, args.batch_size or settings.batch_size, lambda line: print(line, flush=True)
        )
        rows += done
    args.out.write_text(json.dumps(rows, indent=1, ensure_ascii=False))
    print(f"\n{len(items)} requests, {len({item.kind for item in items})} kinds; torch threads: {threads}\n")
    print(table(items, rows, variants))
    print(
        "\ngeneration time per variant: "
        + ", ".join(f"{v} {s:.1f} s" for v, s in seconds.items())
        + f"; together: {sum(seconds.values()):.1f} s (budget for all four in a cold build: 120 s)"
    )
    tokens = {v: sum(r["new_tokens"] for r in rows if r["variant"] == v) for v in variants}
    print("new tokens per variant: " + ", ".join(f"{v} {n}" for v, n in tokens.items()))
    print(f"replies and scores: {args.out}")


if __name__ == "__main__":
    main()
