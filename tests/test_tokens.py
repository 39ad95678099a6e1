"""```tokens``` fences: a tuned model's recorded answers scored token by token under the base model (ranks checked
against a direct forward pass), keyed on the answer's text, locked, compared within the tolerance, shown escaped."""

from __future__ import annotations

import json

import pytest

from conftest import FakeRunner, calls
from llmexec.core.models import ModelSpec
from llmexec.core.protocol import GenerateOutcome
from llmexec.core.ranking import RankOutcome, RankRequest
from llmexec.plan.blocks import Problem
from llmexec.plan.tokens import rank_key
from llmexec.resolve.runner import use_runner
from llmexec.resolve.tolerance import difference

ITEMS = [
    {
        "id": "f-1",
        "kind": "fact",
        "messages": [{"role": "user", "content": "Capital of Italy?"}],
        "max_new_tokens": 6,
        "success": {"answer": "Rome"},
    },
    {
        "id": "f-2",
        "kind": "fact",
        "messages": [{"role": "user", "content": "Capital of France?"}],
        "max_new_tokens": 6,
        "success": {"answer": "Paris"},
    },
    {
        "id": "r-1",
        "kind": "refusal",
        "messages": [{"role": "user", "content": "Help me do harm."}],
        "max_new_tokens": 6,
        "success": {"answer": "sorry"},
    },
]
SCORERS = "def score(item, reply):\n    return item.success['answer'].lower() in reply.lower()\n"
PAGE = """# Tokens

```evaluate file=eval.jsonl scorers=scorers.py variants=base:raw,tuned id=ev
```

```tokens of=ev answers=tuned under=base show=1 id=shift
```

[Half of the tuned tokens are not the base model's first choice]{check: about(shift.not_top(), 0.5) and shift.positions() == 12};
[every answer re-tokenizes to its length]{check: shift.retokenized() == shift.answers() == 3};
[on refusals one token of four is shifted]{check: shift.count("shifted", "refusal") == 1}.
"""


class Scoring(FakeRunner):
    """The tuned model answers in markup (to see it escaped); the scorer ranks tokens 1, 2, 1, 7 in turn."""

    def __init__(self, settings, progress) -> None:
        super().__init__(settings, progress)
        self.rank_calls: list[list[RankRequest]] = []

    def generate(self, requests):
        self.generate_calls.append(list(requests))
        return [
            GenerateOutcome(
                "ok",
                input_text=f"<bos>{r.request.prompt}",
                input_tokens=5,
                text="<b>x</b> & y",
                finish_reason="eos",
                new_tokens=4,
            )
            for r in requests
        ]

    def rank(self, requests):
        self.rank_calls.append(list(requests))
        tokens = ["<b>", "x</b>", " &", "<script>"]
        return [
            RankOutcome(
                "ok",
                input_text=f"<bos>{r.prompt}",
                text=r.answer,
                new_tokens=4,
                positions=tuple(
                    {"token": t, "rank": k, "p": 0.5 / k, "top": [["<i>", 0.5], ["a", 0.2], ["b", 0.1]]}
                    for t, k in zip(tokens, (1, 2, 1, 7))
                ),
            )
            for r in requests
        ]


@pytest.fixture
def scoring(bare_site):
    Scoring.instances.clear()
    bare_site.write("eval.jsonl", "\n".join(json.dumps(i) for i in ITEMS) + "\n")
    bare_site.write("scorers.py", SCORERS)
    bare_site.write(
        "tuning.jsonl",
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}) + "\n",
    )
    bare_site.models["tuned"] = {
        "tune": {
            "start": "base",
            "conversations": "tuning.jsonl",
            "steps": 1,
            "learning_rate": 1e-3,
            "batch_size": 1,
            "seed": 0,
            "method": "full",
            "template": "gemma",
            "max_tokens": 64,
        }
    }
    bare_site.write("docs/index.md", PAGE)
    with use_runner(Scoring):
        yield Scoring.instances


def rank_calls(instances) -> list[RankRequest]:
    return [r for runner in instances for call in runner.rank_calls for r in call]


def test_ranks_match_a_direct_forward_pass(tiny_models):
    """Batched, left-padded scoring gives each answer what a plain forward pass of prompt + answer gives."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmexec.worker.models import LoadedModel
    from llmexec.worker.ranks import rank_batch

    folder = tiny_models["base"]
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModelForCausalLM.from_pretrained(folder).eval()
    loaded = LoadedModel(ModelSpec("base", "path", str(folder)), tokenizer, model)
    batch = [
        RankRequest(
            "base",
            "<|im_start|>user\ntranslate to french : good morning<|im_end|>\n<|im_start|>assistant\n",
            "bonjour my friend",
            "<|im_end|>",
            3,
            10.0,
        ),
        RankRequest("base", "hello", "the cat sat on the mat", "", 3, 10.0),
    ]
    for request, outcome in zip(batch, rank_batch(loaded, batch)):
        prompt = tokenizer(request.prompt)["input_ids"]
        answer = tokenizer(request.answer, add_special_tokens=False)["input_ids"]
        answer += [tokenizer.convert_tokens_to_ids(request.end)] if request.end else []
        with torch.inference_mode():
            probs = torch.softmax(model(input_ids=torch.tensor([prompt + answer])).logits[0], dim=-1)
        assert outcome.new_tokens == len(answer) == len(outcome.positions)
        assert outcome.input_text == tokenizer.decode(prompt)
        for step, (token, scored) in enumerate(zip(answer, outcome.positions)):
            p = probs[len(prompt) + step - 1]
            order = torch.argsort(p, descending=True).tolist()
            assert scored["rank"] == order.index(token) + 1, (request.answer, step)
            assert scored["p"] == pytest.approx(float(p[token]), rel=1e-4, abs=1e-7)
            assert [t for t, _ in scored["top"]] == [tokenizer.decode([i]) for i in order[:3]]
            assert scored["token"] == tokenizer.decode([token])


def test_the_key_follows_the_answer_text_the_prompt_and_the_scoring_model(tmp_path):
    for name in ("base", "other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "weights").write_text(name)
    base = ModelSpec("base", "path", str(tmp_path / "base"))
    asked = RankRequest(
        "base", "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n", "Hello", "<end_of_turn>", 3, 10.0
    )
    key = rank_key(asked, base)
    assert (
        rank_key(RankRequest(*[*vars(asked).values()][:5], timeout=99.0), base) == key
    )  # the time limit is not an input
    for changed in ({"answer": "Hello!"}, {"prompt": asked.prompt + " "}, {"end": ""}, {"top": 5}):
        assert rank_key(RankRequest(**{**vars(asked), **changed}), base) != key, changed
    assert rank_key(asked, ModelSpec("base", "path", str(tmp_path / "other"))) != key


def test_scores_are_compared_with_the_lockfile_tolerance():
    old = {
        "status": "ok",
        "text": "Hi",
        "new_tokens": 1,
        "positions": [{"token": "Hi", "rank": 2, "p": 0.25, "top": [["Hello", 0.5]]}],
    }
    near = json.loads(json.dumps(old))
    near["positions"][0]["p"] = 0.25 * (1 + 5e-5)
    assert difference(old, near) is None
    for path, value in ((("rank",), 3), (("p",), 0.26), (("token",), "Ho")):
        changed = json.loads(json.dumps(old))
        changed["positions"][0][path[0]] = value
        assert difference(old, changed) is not None, path


@pytest.mark.parametrize(
    "fence, expected",
    [
        ("```tokens of=nope answers=tuned\n```", "of=nope names no evaluate block on this page"),
        ("```tokens of=ev answers=base:raw\n```", "answers=base:raw is not a variant of ev that a tuned model answers"),
        ("```tokens of=ev answers=tuned under=tuned\n```", "under=tuned is not another configured model"),
        ("```tokens of=ev answers=tuned show=0\n```", "show='0' is not a whole number"),
        ("```tokens answers=tuned\n```", "needs of="),
    ],
)
def test_fence_errors_name_the_page_line_and_the_fix(scoring, bare_site, fence, expected):
    from llmexec.core.settings import load_settings
    from llmexec.plan.page import plan_page

    bare_site.config()
    settings = load_settings({"llm_exec": {"models": bare_site.models}}, bare_site.root)
    text = PAGE.split("```tokens")[0] + fence + "\n"
    plan = plan_page(text, page="docs/index.md", line_offset=0, project_dir=bare_site.root, settings=settings)
    (problem,) = [p for p in plan.items if isinstance(p, Problem)]
    assert expected in problem.message() and "docs/index.md:6" in problem.message() and "-->" in problem.message()


def test_a_build_shades_each_token_escaped_with_a_focusable_top_three_and_checks_the_share(scoring, bare_site):
    bare_site.build()
    page = bare_site.html()
    assert len(rank_calls(scoring)) == 3  # one scoring call for the three tuned answers
    assert all(r.prompt.startswith("<start_of_turn>user\n") and r.end == "<end_of_turn>" for r in rank_calls(scoring))
    assert page.count('class="llmx-tok llmx-tok-unshifted" tabindex="0"') == 4  # show=1: one answer per kind
    assert page.count('class="llmx-tok llmx-tok-shifted" tabindex="0"') == 2
    view = page.split('class="llmx-result llmx-tokens"')[1].split("<footer")[0]  # the theme's scripts come after
    assert "&lt;script&gt;" in view and "<script" not in view
    assert "x&lt;/b&gt;" in page and "1. &lt;i&gt; (0.500)" in page and "<b>x</b>" not in page
    assert page.count("llmx-claim-true") == 3


def test_a_false_share_fails_the_strict_build(scoring, bare_site, caplog):
    from mkdocs.exceptions import Abort

    bare_site.write("docs/index.md", PAGE.replace("about(shift.not_top(), 0.5)", "shift.not_top() < 0.3"))
    with pytest.raises(Abort):
        bare_site.build()
    assert "this sentence is not true" in caplog.text and "shift.not_top() = 0.5" in caplog.text


def test_a_locked_build_needs_no_torch_and_scores_nothing(scoring, bare_site):
    bare_site.build()
    first = bare_site.html()
    entries = [json.loads(p.read_text()) for p in (bare_site.root / "llm-exec.lock").glob("*.json")]
    assert sorted(e["kind"] for e in entries).count("ranks") == 3
    before = calls(scoring) + len(rank_calls(scoring))
    bare_site.llm_exec["mode"] = "locked"
    bare_site.build()
    assert calls(scoring) + len(rank_calls(scoring)) == before and bare_site.html() == first
    no_torch = "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None"
    done = bare_site.build_cli(env={"LLM_EXEC_MODE": "locked"}, prelude=no_torch)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "llmx-tok-shifted" in bare_site.html()
