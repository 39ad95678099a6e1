"""A preferred model: DPO from the tuned one on preference pairs, trained once, keyed by everything that decides it."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest

from llmexec.core.settings import load_settings
from llmexec.errors import ConfigError
from test_tuning import NO_TORCH, tune, write_data

ROOT = Path(__file__).resolve().parent.parent
PAIRS = [
    ("good morning", "bonjour my friend", "the cat sat"),
    ("hello", "hello my friend", "the dog sat on the mat"),
    ("translate to french", "bonjour", "good morning"),
    ("my friend", "hello", "the mat"),
]


def write_pairs(path: Path, extra: str = "") -> Path:
    lines = [
        json.dumps({"kind": "k", "messages": [{"role": "user", "content": q}], "chosen": c, "rejected": r})
        for q, c, r in PAIRS
    ]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def prefer(**changes) -> dict:
    return {
        "prefer": {
            "start": "tuned",
            "pairs": "pairs.jsonl",
            "beta": 0.5,
            "steps": 3,
            "learning_rate": 1e-2,
            "batch_size": 2,
            "seed": 0,
            "method": "full",
            "max_tokens": 64,
            **changes,
        }
    }


@pytest.fixture
def preferred_site(site, tmp_path):
    write_data(site.root / "tuning.jsonl")
    write_pairs(site.root / "pairs.jsonl")
    site.models["tuned"] = tune()
    site.models["preferred"] = prefer()
    site.llm_exec["model_cache_dir"] = str(tmp_path / "model-cache")
    return site


def identity(root: Path, models: dict) -> str:
    return load_settings({"llm_exec": {"models": models}}, root).models["preferred"].identity


def test_the_dpo_loss_has_its_known_value():
    """-log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r))) worked by hand: beta 0.5, margins 1 and -1 -> 1."""
    import torch

    from llmexec.worker.prefer import dpo_loss

    loss, chosen, rejected = dpo_loss(
        torch.tensor([-1.0, -2.0]),
        torch.tensor([-3.0, -2.0]),
        torch.tensor([-2.0, -2.0]),
        torch.tensor([-2.0, -2.0]),
        0.5,
    )
    assert chosen.tolist() == [0.5, 0.0] and rejected.tolist() == [-0.5, 0.0]
    assert loss.item() == pytest.approx((math.log(1 + math.exp(-1.0)) + math.log(2)) / 2, abs=1e-6)


def test_on_a_tiny_model_the_loss_starts_at_log_2_and_the_reference_is_scored_once(tiny_models, tmp_path):
    """Before the first step the policy is the reference: every implicit reward is 0, the loss exactly ln 2. The
    reference log-probabilities are computed once (two replies per pair used), however many steps use them; the
    summed log-probability of a reply is the one a plain forward pass gives; training widens the margin."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmexec.core.preferences import PreferenceRecipe, read_pairs
    from llmexec.core.templates import TEMPLATES
    from llmexec.worker.prefer import optimize, pair_rows, sequence_logps

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["instruct"])
    pairs = read_pairs(write_pairs(tmp_path / "pairs.jsonl"))
    model = AutoModelForCausalLM.from_pretrained(tiny_models["instruct"], dtype=torch.float32)
    (ids, labels), _ = pair_rows(tokenizer, TEMPLATES["chatml"], pairs[0], 64)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].log_softmax(-1)
        by_hand = sum(logits[i - 1, ids[i]].item() for i in range(1, len(ids)) if labels[i] != -100)
        assert sequence_logps(model, [(ids, labels)], 0).item() == pytest.approx(by_hand, abs=1e-5)
    records = {}
    for steps in (1, 6):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(tiny_models["instruct"], dtype=torch.float32)
        recipe = PreferenceRecipe("tuned", "pairs.jsonl", 0.5, steps, 1e-2, 2, 0, "full", "chatml", 64)
        records[steps] = optimize(model, tokenizer, pairs, recipe)
    for record in records.values():
        assert record["losses"][0] == pytest.approx(math.log(2), abs=1e-4)
        assert record["reward_margins"][0] == 0 and record["preference_accuracies"][0] == 0
    # one step uses 2 pairs: 4 replies scored; six steps use the 4 pairs 12 times: still each reply once, 8
    assert records[1]["reference_sequences"] == 4 and records[6]["reference_sequences"] == 2 * len(PAIRS)
    assert records[6]["reward_margins"][-1] > 0 and records[6]["losses"][-1] < math.log(2)


def test_the_identity_changes_with_every_recipe_field_the_pairs_and_the_starting_model(preferred_site):
    from llmexec.core import preferences

    root, models = preferred_site.root, preferred_site.models
    first = identity(root, models)
    assert identity(root, {**models, "preferred": prefer()}) == first
    changed = [
        prefer(beta=0.2),
        prefer(steps=4),
        prefer(learning_rate=2e-2),
        prefer(batch_size=3),
        prefer(seed=1),
        prefer(method="layers"),
        prefer(max_tokens=65),
    ]
    ids = [identity(root, {**models, "preferred": p}) for p in changed]
    ids.append(identity(root, {**models, "tuned": tune(steps=4)}))  # another starting (tuned) model
    write_pairs(
        root / "pairs.jsonl",
        extra=json.dumps({"kind": "k", "messages": [{"role": "user", "content": "a"}], "chosen": "b", "rejected": "c"})
        + "\n",
    )
    ids.append(identity(root, models))
    assert first not in ids and len(set(ids)) == len(ids)
    write_pairs(root / "pairs.jsonl")
    assert identity(root, models) == first
    trainer = preferences.DPO_TRAINER
    try:
        preferences.DPO_TRAINER = trainer + 1
        assert identity(root, models) != first
    finally:
        preferences.DPO_TRAINER = trainer


@pytest.mark.parametrize(
    "line, expected",
    [
        (
            '{"kind": "k", "messages": [{"role": "user", "content": "a"}], "chosen": "b"}',
            "pairs.jsonl:5: not a preference pair ('rejected')",
        ),
        (
            '{"kind": "k", "messages": [{"role": "user", "content": "a"}], "chosen": "b", "rejected": "b"}',
            "pairs.jsonl:5: not a preference pair ('chosen' and 'rejected' are the same reply)",
        ),
        (
            '{"kind": "k", "messages": [{"role": "assistant", "content": "a"}], "chosen": "b", "rejected": "c"}',
            "pairs.jsonl:5: not a preference pair (turns must alternate user, assistant",
        ),
        ("{not json", "pairs.jsonl:5: not a preference pair (Expecting"),
    ],
)
def test_a_broken_pairs_file_is_reported_with_its_file_and_line(preferred_site, line, expected):
    write_pairs(preferred_site.root / "pairs.jsonl", extra=line + "\n")
    with pytest.raises(ConfigError) as raised:
        load_settings({"llm_exec": {"models": preferred_site.models}}, preferred_site.root)
    assert expected in str(raised.value) and "-->" in str(raised.value)


def test_the_preferred_model_must_start_from_an_instruction_tuned_one(preferred_site):
    with pytest.raises(ConfigError, match=r"prefer.start: 'base' is not an instruction-tuned model"):
        load_settings(
            {"llm_exec": {"models": {**preferred_site.models, "preferred": prefer(start="base")}}}, preferred_site.root
        )


def _normalized(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def in_the_evaluation_set(pairs: Path, evaluation: Path) -> list[str]:
    """The pairs' prompts (their last user message, or the whole conversation) that the held-out set also asks."""
    from llmexec.core.preferences import read_pairs

    asked = set()
    for line in evaluation.read_text().splitlines():
        messages = json.loads(line)["messages"]
        asked |= {_normalized(messages[-1]["content"]), _normalized("\n\n".join(m["content"] for m in messages))}
    return [
        f"{pairs.name}:{p.line}"
        for p in read_pairs(pairs)
        if _normalized(p.prompt[-1][1]) in asked or _normalized(p.text()) in asked
    ]


def test_no_prompt_of_the_preference_pairs_is_in_the_evaluation_set(tmp_path):
    pairs, evaluation = ROOT / "tuning" / "preferences.jsonl", ROOT / "tuning" / "evaluation.jsonl"
    assert in_the_evaluation_set(pairs, evaluation) == []
    planted = tmp_path / "preferences.jsonl"  # the check can fail: a held-out request planted among the pairs
    asked = json.loads(evaluation.read_text().splitlines()[40])["messages"]
    planted.write_text(
        pairs.read_text() + json.dumps({"kind": "k", "messages": asked, "chosen": "Yes.", "rejected": "No."}) + "\n"
    )
    assert in_the_evaluation_set(planted, evaluation) == [
        f"preferences.jsonl:{len(pairs.read_text().splitlines()) + 1}"
    ]


def test_the_site_pairs_have_three_kinds_and_150_pairs():
    from llmexec.core.preferences import read_pairs

    pairs = read_pairs(ROOT / "tuning" / "preferences.jsonl")
    kinds = {p.kind for p in pairs}
    assert len(pairs) >= 150 and len(kinds) >= 3 and all(sum(p.kind == k for p in pairs) >= 15 for k in kinds)


PAGE = "# T\n\n```generate model=tuned,preferred max_new_tokens=4 id=q\ngood morning\n```\n"


def test_trained_once_after_the_tuned_model_then_reused_and_a_locked_build_needs_no_torch(preferred_site, caplog):
    caplog.set_level("INFO")
    preferred_site.write("docs/index.md", PAGE)
    preferred_site.build()  # trains tuned, then preferred from it, and locks
    log = caplog.text
    assert "preference-tuning (DPO) model 'preferred' once: 3 steps on pairs.jsonl" in log
    assert re.search(r"preferred: step 3/3, loss \d\.\d{3}, reward margin -?\d\.\d{3}, preference accuracy", log)
    folders = sorted(p.name for p in (Path(preferred_site.llm_exec["model_cache_dir"])).iterdir() if p.is_dir())
    assert [f.split("-")[1] for f in folders if f.startswith("tuned-")] == ["preferred", "tuned"]
    record = json.loads(
        next(Path(preferred_site.llm_exec["model_cache_dir"]).glob("tuned-preferred-*/training.json")).read_text()
    )
    assert record["reference_sequences"] == 2 * len(PAIRS) and len(record["reward_margins"]) == 3
    caplog.clear()
    for name in ("llm-exec.lock", ".cache"):
        shutil.rmtree(preferred_site.root / name)
    preferred_site.build()  # a cold build: both models come from the model cache, neither is trained again
    assert "once:" not in caplog.text and "2 blocks executed" in caplog.text
    locked = preferred_site.build_cli(env={"LLM_EXEC_MODE": "locked"}, prelude=NO_TORCH)
    assert locked.returncode == 0, locked.stderr[-3000:]
    assert "0 blocks executed" in locked.stderr
