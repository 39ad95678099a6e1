"""Worker side: preference-tune a tuned model by DPO on the recipe's pairs (run once, in a forked child)."""

from __future__ import annotations

import json
import random
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.files import file_sha256
from ..core.models import ModelSpec
from ..core.preferences import Pair, PreferenceRecipe, read_pairs
from ..core.templates import TEMPLATES, TurnTemplate
from .tune import PROGRESS_MARK, encode, save_trained

Row = tuple[list[int], list[int]]  # token ids, labels (-100 where no log-probability is summed)


def pair_rows(tokenizer: Any, template: TurnTemplate, pair: Pair, max_tokens: int) -> tuple[Row, Row]:
    """The prompt with the chosen reply, and with the rejected one; labels on the reply and its end marker only."""
    return tuple(
        encode(tokenizer, template, [*pair.prompt, ("assistant", reply)], max_tokens)  # type: ignore[return-value]
        for reply in (pair.chosen, pair.rejected)
    )


def sequence_logps(model: Any, rows: list[Row], pad: int):
    """Each row's summed log-probability of its labelled tokens (the reply) given what precedes them."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = torch.tensor([row + [pad] * (width - len(row)) for row, _ in rows])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row, _ in rows])
    hidden = model.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
    targets = labels[:, 1:]
    taken = targets != -100
    logits = model.get_output_embeddings()(hidden[:, :-1][taken]).float()  # only the reply: the vocabulary is large
    if cap := getattr(model.config, "final_logit_softcapping", None):
        logits = torch.tanh(logits / cap) * cap
    token = torch.log_softmax(logits, dim=-1).gather(1, targets[taken][:, None]).squeeze(1)
    return torch.zeros(len(rows), dtype=token.dtype).index_add(0, taken.nonzero()[:, 0], token)


def dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta: float):
    """The DPO loss, -log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r))), averaged over the pairs, and the
    implicit rewards beta * (pi - ref) of the chosen and the rejected replies (Rafailov et al., 2023, eq. 7)."""
    import torch

    chosen = beta * (policy_chosen - reference_chosen)
    rejected = beta * (policy_rejected - reference_rejected)
    return -torch.nn.functional.logsigmoid(chosen - rejected).mean(), chosen.detach(), rejected.detach()


def optimize(
    model: Any,
    tokenizer: Any,
    pairs: list[Pair],
    recipe: PreferenceRecipe,
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Train `model` in place; the reference is the model as it starts, its log-probabilities computed once, before
    the first step, for each pair that a step will use. Returns per-step losses, reward margins and preference
    accuracies."""
    import torch

    template = TEMPLATES[recipe.template]
    examples = [pair_rows(tokenizer, template, pair, recipe.max_tokens) for pair in pairs]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rng, order = random.Random(recipe.seed), list[int]()
    while len(order) < recipe.steps * recipe.batch_size:  # epochs, each in the seed's order
        order += rng.sample(range(len(examples)), len(examples))
    batches = [order[i * recipe.batch_size : (i + 1) * recipe.batch_size] for i in range(recipe.steps)]
    visited = sorted({i for batch in batches for i in batch})
    started = time.perf_counter()
    model.eval()  # the reference: the starting weights, once, with no gradient, for every pair a step will use
    reference: dict[int, tuple[Any, Any]] = {}
    scored = 0  # replies scored by the reference: counted, so that a test can see it is done once
    with torch.no_grad():
        for first in range(0, len(visited), recipe.batch_size):
            chunk = visited[first : first + recipe.batch_size]
            scores = sequence_logps(model, [examples[i][0] for i in chunk] + [examples[i][1] for i in chunk], pad)
            reference |= {i: (scores[k], scores[len(chunk) + k]) for k, i in enumerate(chunk)}
            scored += 2 * len(chunk)
    progress(
        f"the reference model's log-probabilities of {len(visited)} pairs, computed once: "
        f"{time.perf_counter() - started:.0f} s"
    )
    if recipe.method == "layers":
        model.get_input_embeddings().weight.requires_grad_(False)  # tied to the output layer in these models
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=recipe.learning_rate, weight_decay=0.0, fused=True)
    losses, margins, accuracies = [], [], []
    model.train()
    for step, batch in enumerate(batches, 1):
        rows = [examples[i][0] for i in batch] + [examples[i][1] for i in batch]
        policy = sequence_logps(model, rows, pad).view(2, -1)
        loss, chosen, rejected = dpo_loss(
            policy[0],
            policy[1],
            torch.stack([reference[i][0] for i in batch]),
            torch.stack([reference[i][1] for i in batch]),
            recipe.beta,
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(round(float(loss.detach()), 4))
        margins.append(round(float((chosen - rejected).mean()), 4))
        accuracies.append(round(float((chosen > rejected).float().mean()), 4))
        if step == 1 or step % max(1, recipe.steps // 10) == 0 or step == recipe.steps:
            elapsed = time.perf_counter() - started
            progress(
                f"step {step}/{recipe.steps}, loss {losses[-1]:.3f}, reward margin {margins[-1]:.3f}, "
                f"preference accuracy {accuracies[-1]:.2f}, {elapsed:.0f} s so far, "
                f"about {elapsed / step * (recipe.steps - step):.0f} s left"
            )
    model.eval()
    return {
        "losses": losses,
        "reward_margins": margins,
        "preference_accuracies": accuracies,
        "reference_sequences": scored,
        "pairs": len(pairs),
        "pairs_seen": len(visited),
        "kinds": {kind: sum(p.kind == kind for p in pairs) for kind in dict.fromkeys(p.kind for p in pairs)},
        "seconds": round(time.perf_counter() - started, 1),
    }


def train(spec: ModelSpec, start_folder: Path, target: Path, threads: int) -> None:
    """Preference-tune, then write the model, its tokenizer (the start's, with its chat template) and training.json
    into a scratch folder that is renamed into place: a crash never leaves half a model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    recipe, data, start = spec.tune_parts()
    pairs = read_pairs(data, recipe.data)
    torch.manual_seed(recipe.seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    tokenizer = AutoTokenizer.from_pretrained(start_folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(start_folder, dtype=torch.float32, local_files_only=True)
    started = time.perf_counter()
    record = optimize(
        model, tokenizer, pairs, recipe, lambda line: print(f"{PROGRESS_MARK}{spec.role}: {line}", flush=True)
    )
    start_record = json.loads((start_folder / "training.json").read_text())
    record |= {
        "identity": spec.identity,
        "recipe": recipe.to_json(),
        "start": start.identity,
        "start_weights_sha256": start_record.get("weights_sha256", ""),
        "data_sha256": file_sha256(data),
        "threads": threads,
        "peak_memory_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 2),
    }
    save_trained(model, tokenizer, target, record, started)
