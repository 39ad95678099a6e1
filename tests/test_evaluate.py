"""```evaluate``` fences: validation, jobs keyed like generate answers, modes, re-scoring without executing, the table,
the chart, escaped replies and claims over the counts."""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from mkdocs.exceptions import Abort

from conftest import FakeRunner, calls
from llmexec.core.models import ModelSpec
from llmexec.core.protocol import GenerateOutcome
from llmexec.core.templates import TEMPLATES, prompt_text
from llmexec.plan.blocks import Block, Problem, find_blocks
from llmexec.plan.keys import generate_key
from llmexec.plan.page import evaluation_jobs
from llmexec.present.evaluation import wilson
from llmexec.resolve.runner import use_runner

ITEMS = [
    {
        "id": "cap-1",
        "kind": "fact",
        "messages": [{"role": "user", "content": "Capital of Italy?"}],
        "max_new_tokens": 6,
        "success": {"answer": "Rome"},
    },
    {
        "id": "cap-2",
        "kind": "fact",
        "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Capital of France?"}],
        "max_new_tokens": 6,
        "success": {"answer": "Paris"},
    },
    {
        "id": "turn-1",
        "kind": "second_turn",
        "messages": [
            {"role": "user", "content": "I am going to Rome."},
            {"role": "assistant", "content": "Nice!"},
            {"role": "user", "content": "Which country is that in?"},
        ],
        "max_new_tokens": 8,
        "success": {"answer": "Italy"},
    },
]
SCORERS = "def score(item, reply):\n    return item.success['answer'].lower() in reply.lower()\n"
FENCE = "```evaluate file=eval.jsonl scorers=scorers.py variants=base:raw,instruct id=ev\n```\n"
PAGE = (
    "# Evaluation\n\n"
    + FENCE
    + """
[Instruct answers both facts]{check: ev.successes("instruct", "fact") == 2 and ev.n("fact") == 2};
[base answers none]{check: ev.successes("base:raw") == 0}; [instruct ends each reply]{check: ev.stopped("instruct") == 3}.
"""
)


class Answering(FakeRunner):
    """Instruct knows the answers (in markup, to see it escaped); base repeats the question."""

    def generate(self, requests):
        self.generate_calls.append(list(requests))
        answers = {"Italy?": "Rome", "France?": "Paris", "in?": "Italy"}
        return [
            GenerateOutcome(
                "ok",
                input_text=r.request.prompt,
                input_tokens=3,
                finish_reason="eos",
                new_tokens=2,
                text=(
                    f"<b>{next(a for q, a in answers.items() if r.request.prompt.endswith(q))}</b>"
                    if r.model == "instruct"
                    else r.request.prompt
                ),
            )
            for r in requests
        ]


@pytest.fixture
def answering():
    Answering.instances.clear()
    with use_runner(Answering):
        yield Answering.instances


def write_set(site, items=ITEMS, scorers=SCORERS) -> None:
    site.write("eval.jsonl", "\n".join(json.dumps(i) for i in items) + "\n")
    site.write("scorers.py", scorers)


def requests(instances) -> list:
    return [r for runner in instances for call in runner.generate_calls for r in call]


# ---- the fence, validated like the others ----


def found(tmp_path: Path, fence: str, roles=("base", "instruct"), formats=None) -> Block | Problem:
    (tmp_path / "eval.jsonl").write_text("\n".join(json.dumps(i) for i in ITEMS) + "\n")
    (tmp_path / "scorers.py").write_text(SCORERS)
    (item,) = find_blocks(
        "Intro\n\n" + fence, page="docs/e.md", line_offset=0, project_dir=tmp_path, roles=roles, formats=formats or {}
    )
    return item


@pytest.mark.parametrize(
    "fence, expected",
    [
        (
            "```evaluate file=eval.jsonl scorers=scorers.py variants=base:raw,robot\n```",
            "docs/e.md:3: variant 'robot' names unknown model 'robot'",
        ),
        (
            "```evaluate file=missing.jsonl scorers=scorers.py variants=base:raw\n```",
            "docs/e.md:3: file='missing.jsonl' not found",
        ),
        ("```evaluate file=eval.jsonl variants=base:raw\n```", "docs/e.md:3: an evaluate block needs scorers="),
        (
            "```evaluate file=eval.jsonl scorers=scorers.py variants=base:instruct-format\n```",
            "docs/e.md:3: variant 'base:instruct-format': 'instruct' is not a tuned model",
        ),
        (
            "```evaluate file=eval.jsonl scorers=scorers.py variants=base:raw colour=red\n```",
            "docs/e.md:3: unknown option 'colour' on an evaluate block",
        ),
        ("```evaluate file=eval.jsonl scorers=scorers.py variants=base:raw,base:raw\n```", "names a variant twice"),
    ],
)
def test_fence_errors_name_the_page_line_and_the_fix(tmp_path, fence, expected):
    problem = found(tmp_path, fence)
    assert isinstance(problem, Problem) and expected in problem.message() and "\n  --> " in problem.message()


def test_a_broken_line_of_the_set_is_named_as_file_line(tmp_path):
    fence = "```evaluate file=eval.jsonl scorers=scorers.py variants=base:raw\n```"
    found(tmp_path, fence)
    lines = (tmp_path / "eval.jsonl").read_text().splitlines()
    lines[1] = lines[1].replace('"max_new_tokens": 6', '"max_new_tokens": "six"')
    (tmp_path / "eval.jsonl").write_text("\n".join(lines))
    (problem,) = find_blocks(fence, page="docs/e.md", line_offset=0, project_dir=tmp_path)
    assert isinstance(problem, Problem) and problem.message().startswith("docs/e.md:1: eval.jsonl:2: 'max_new_tokens'")


# ---- jobs: keyed exactly like a generate block's answer ----

MODELS = {
    "base": ModelSpec("base", "preset", "gemma-3-270m"),
    "instruct": ModelSpec("instruct", "preset", "smollm2-135m-instruct"),
}


class _Settings:
    models, max_new_tokens = MODELS, 48


def test_each_item_and_variant_is_the_job_of_an_equivalent_generate_block(tmp_path):
    block = found(tmp_path, FENCE)
    jobs = {(j.item, j.variant): j for j in evaluation_jobs(block, _Settings())}
    assert len(jobs) == 6
    same = {
        ("cap-1", "instruct"): "```generate model=instruct template=chat max_new_tokens=6\nCapital of Italy?\n```",
        ("cap-2", "instruct"): '```generate model=instruct template=chat system="Be terse." max_new_tokens=6\n'
        "Capital of France?\n```",
        (
            "cap-2",
            "base:raw",
        ): "```generate model=base template=raw max_new_tokens=6\nBe terse.\n\nCapital of France?\n```",
    }
    for (item, variant), fence in same.items():
        (generate,) = find_blocks(fence, page="x.md", line_offset=0, project_dir=tmp_path)
        job = jobs[(item, variant)]
        assert job.key == generate_key(replace(generate.request, max_new_tokens=6), MODELS[job.role]), (item, variant)
    second = jobs[("turn-1", "instruct")]  # earlier turns are part of the key; without them it is another question
    (bare,) = find_blocks(
        "```generate model=instruct template=chat max_new_tokens=8\nWhich country is that in?\n```",
        page="x.md",
        line_offset=0,
        project_dir=tmp_path,
    )
    assert second.request.history == (("user", "I am going to Rome."), ("assistant", "Nice!"))
    assert second.key != generate_key(replace(bare.request, max_new_tokens=8), MODELS["instruct"])


def test_the_tuned_turn_format_is_the_tuned_tokenizers_chat_template(tiny_models):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["base"])
    tokenizer.chat_template = TEMPLATES["gemma"].jinja  # what training gives the tuned model's tokenizer
    for item in ITEMS:
        turns = [(m["role"], m["content"]) for m in item["messages"]]
        expected = tokenizer.apply_chat_template(item["messages"], tokenize=False, add_generation_prompt=True)
        assert tokenizer.bos_token + prompt_text(TEMPLATES["gemma"], turns) == expected, item["id"]


def test_a_tuned_format_variant_gives_base_that_text_raw_and_stops_at_the_end_of_turn(tmp_path):
    block = found(
        tmp_path,
        "```evaluate file=eval.jsonl scorers=scorers.py variants=base:tuned-format\n```",
        roles=("base", "tuned", "instruct"),
        formats={"tuned": "gemma"},
    )
    job = next(j for j in evaluation_jobs(block, _Settings()) if j.item == "cap-2")
    assert job.role == "base" and job.request.template == "raw" and job.request.stop == ("<end_of_turn>",)
    assert (
        job.block.source == "<start_of_turn>user\nBe terse.\n\nCapital of France?<end_of_turn>\n<start_of_turn>model\n"
    )


# ---- builds ----


def test_a_build_scores_the_replies_into_wilson_cells_a_chart_and_escaped_replies(bare_site, answering):
    write_set(bare_site)
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    page = bare_site.html()
    assert len(requests(answering)) == 6  # 3 items x 2 variants, in one call (the site's batches)
    low, high = wilson(2, 2)
    assert f'2/2 <span class="llmx-interval">[{low:.2f}, {high:.2f}]</span>' in page
    assert '0/3 <span class="llmx-interval">[0.00, 0.56]</span>' in page  # base:raw, all kinds
    svg = page[page.index('<svg class="llmx-eval-chart"') :]
    svg = svg[: svg.index("</svg>")]
    assert "<title" in svg and "<desc" in svg and "script" not in svg and "currentColor" not in svg  # colours: CSS
    assert "&lt;b&gt;Rome&lt;/b&gt;" in page and "<b>Rome</b>" not in page  # model output stays text
    assert page.count("llmx-claim-true") == 3


def test_a_false_rate_claim_fails_the_strict_build(bare_site, answering, caplog):
    write_set(bare_site)
    bare_site.write("docs/index.md", PAGE.replace('successes("base:raw") == 0', 'successes("base:raw") >= 1'))
    with pytest.raises(Abort):
        bare_site.build()
    assert "this sentence is not true" in caplog.text and 'ev.successes("base:raw") = 0' in caplog.text


def test_a_locked_build_renders_from_the_lockfile_without_executing(bare_site, answering):
    write_set(bare_site)
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    assert len(list((bare_site.root / "llm-exec.lock").glob("*.json"))) == 6  # one entry per item and variant
    first = bare_site.html()
    bare_site.llm_exec["mode"] = "locked"
    bare_site.build()
    assert calls(answering) == 1 and bare_site.html() == first


def test_editing_one_item_executes_only_that_item_on_each_variant(bare_site, answering):
    write_set(bare_site)
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    edited = [dict(i) for i in ITEMS]
    edited[0] = {**edited[0], "messages": [{"role": "user", "content": "Old capital of Italy?"}]}
    write_set(bare_site, edited)
    bare_site.build()
    again = [r for r in answering[-1].generate_calls[-1]]
    assert sorted((r.model, r.request.prompt) for r in again) == [
        ("base", "Old capital of Italy?"),
        ("instruct", "Old capital of Italy?"),
    ]


def test_a_scorer_edit_rescores_without_executing(bare_site, answering):
    write_set(bare_site)
    bare_site.write("docs/index.md", "# E\n\n" + FENCE)
    bare_site.build()
    assert '0/3 <span class="llmx-interval">' in bare_site.html()
    bare_site.write("scorers.py", "def score(item, reply):\n    return True\n")
    bare_site.build()
    assert calls(answering) == 1 and '0/3 <span class="llmx-interval">' not in bare_site.html()
    assert bare_site.html().count('3/3 <span class="llmx-interval">') == 2


def test_a_broken_scorer_fails_the_strict_build_naming_its_file(bare_site, answering, caplog):
    write_set(bare_site, scorers="def score(item, reply):\n    return reply.missing\n")
    bare_site.write("docs/index.md", "# E\n\n" + FENCE)
    with pytest.raises(Abort):
        bare_site.build()
    assert "scorers.py: score() raised AttributeError" in caplog.text and "eval.jsonl:1 (cap-1)" in caplog.text


def test_earlier_turns_reach_the_model_as_a_conversation(site):
    write_set(site)
    site.write("docs/index.md", "# E\n\n" + FENCE.replace("base:raw,", ""))
    site.build()
    entries = [json.loads(p.read_text()) for p in (site.root / "llm-exec.lock").glob("*.json")]
    second = next(e for e in entries if e["source"] == "Which country is that in?")
    assert second["settings"]["history"] == [["user", "I am going to Rome."], ["assistant", "Nice!"]]
    shown = second["outcome"]["input_text"]  # the tiny tokenizer knows few words: the others decode as <unk>
    assert re.fullmatch(
        r"<\|im_start\|> user [^|]* \. <\|im_end\|> <\|im_start\|> assistant <unk> ! <\|im_end\|> "
        r"<\|im_start\|> user [^|]* \? <\|im_end\|> <\|im_start\|> assistant",
        shown,
    ), shown


def test_wilson_matches_published_values():
    assert [round(v, 4) for v in wilson(5, 10)] == [0.2366, 0.7634]  # Newcombe (1998), Wilson score interval
    assert [round(v, 4) for v in wilson(0, 10)] == [0.0, 0.2775]
    assert wilson(14, 14)[1] == 1.0 and html.escape("x") == "x"


def test_a_preview_marks_what_it_did_not_execute_or_executed_for_itself_only(
    bare_site, answering, monkeypatch, tmp_path
):
    write_set(bare_site)
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    monkeypatch.setenv("LLM_EXEC_MODE", "preview")
    monkeypatch.setenv("LLM_EXEC_REPORT", str(tmp_path / "report.md"))
    edited = [dict(i) for i in ITEMS]
    edited[0] = {**edited[0], "messages": [{"role": "user", "content": "Old capital of Italy?"}]}
    write_set(bare_site, edited)
    bare_site.build()  # strict, and it succeeds: the claims are left unchecked
    page = bare_site.html()
    assert calls(answering) == 1 and "Some replies are not in this build" in page
    assert page.count("llmx-claim-unchecked") == 3 and "Executed for this preview only" not in page
    monkeypatch.setenv("LLM_EXEC_PREVIEW_EXECUTE", "1")
    bare_site.build()
    page = bare_site.html()
    assert calls(answering) == 2 and "Executed for this preview only" in page and "Some replies" not in page


class FailingOne(Answering):
    def generate(self, requests):
        done = super().generate(requests)
        return [
            GenerateOutcome("error", error="RuntimeError: boom")
            if r.request.prompt == "Capital of Italy?" and r.model == "instruct"
            else o
            for r, o in zip(requests, done)
        ]


def test_a_failed_generation_names_the_request_and_the_variant(bare_site, caplog):
    write_set(bare_site)
    bare_site.write("docs/index.md", PAGE)
    with use_runner(FailingOne), pytest.raises(Abort):
        bare_site.build()
    assert (
        "docs/index.md:3: evaluate block, request cap-1 on instruct, failed on the instruct model: RuntimeError: boom"
        in caplog.text
    )
