"""```generate model=base:tuned-format```: the base weights given exactly the tuned model's turn-formatted text, as a
column beside the others (the template held constant), validated like every option."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from conftest import outputs
from llmexec.core.models import ModelSpec
from llmexec.plan.blocks import Block, Problem, find_blocks
from llmexec.plan.keys import generate_key
from llmexec.plan.page import evaluation_jobs, jobs
from test_tuning import write_data

ROLES, FORMATS = ("base", "instruct", "tuned"), {"tuned": "gemma"}
MODELS = {
    "base": ModelSpec("base", "preset", "gemma-3-270m"),
    "instruct": ModelSpec("instruct", "preset", "smollm2-135m-instruct"),
}
# What the tuned model's chat template (core.templates.TEMPLATES["gemma"]) makes of this request, without the BOS.
GEMMA_TEXT = "<start_of_turn>user\nBe terse.\n\nCapital of France?<end_of_turn>\n<start_of_turn>model\n"


class _Settings:
    models, max_new_tokens = MODELS, 48


def block(fence: str) -> Block | Problem:
    (found,) = find_blocks(
        "Intro\n\n" + fence, page="docs/g.md", line_offset=0, project_dir=Path("."), roles=ROLES, formats=FORMATS
    )
    return found


def test_a_variant_column_is_parsed_and_keeps_its_name():
    found = block("```generate model=base,base:tuned-format,base:raw,tuned\nHi\n```")
    assert isinstance(found, Block)
    assert [(v.name, v.role, v.layout, v.turn_format) for v in found.variants] == [
        ("base", "base", "chat", ""),
        ("base:tuned-format", "base", "tuned", "gemma"),
        ("base:raw", "base", "raw", ""),
        ("tuned", "tuned", "chat", ""),
    ]


@pytest.mark.parametrize(
    "model, expected",
    [
        ("robot:tuned-format", "generate block names unknown model 'robot:tuned-format'"),
        ("base:instruct-format", "variant 'base:instruct-format': 'instruct' is not a tuned model"),
        ("base:tuned-shape", "variant 'base:tuned-shape': 'tuned-shape' is not a layout"),
        ("base,base", "names a model twice"),
    ],
)
def test_a_bad_variant_names_the_page_line_and_the_fix(model, expected):
    problem = block(f"```generate model={model}\nHi\n```")
    assert isinstance(problem, Problem)
    assert problem.message().startswith("docs/g.md:3: ") and expected in problem.message(), problem.message()
    assert "\n  --> " in problem.message()


def test_the_turn_format_cannot_leave_the_models_turn_unopened():
    problem = block("```generate model=base:tuned-format generation_prompt=false\nHi\n```")
    assert isinstance(problem, Problem) and "generation_prompt=false cannot apply" in problem.message()


def test_the_sent_prompt_is_the_tuned_templates_text_given_raw_and_the_same_answer_as_the_evaluations():
    fence = '```generate model=base,base:tuned-format system="Be terse." max_new_tokens=6\nCapital of France?\n```'
    found = block(fence)
    plain, formatted = jobs([found], _Settings())
    assert (plain.block, plain.variant) == (found, "")  # a plain column is asked as written: its key is unchanged
    assert plain.key == generate_key(plain.request, MODELS["base"]) and plain.request.max_new_tokens == 6
    assert formatted.role == "base" and formatted.variant == "base:tuned-format"
    assert formatted.block.source == GEMMA_TEXT
    assert formatted.request.prompt == GEMMA_TEXT
    assert (formatted.request.template, formatted.request.system, formatted.request.stop) == (
        "raw",
        "",
        ("<end_of_turn>",),
    )
    # the evaluation's base:tuned-format request for the same conversation is the same answer (one lock entry)
    (ev,) = find_blocks(
        "```evaluate file=eval.jsonl scorers=scorers.py variants=base:tuned-format\n```",
        page="e.md",
        line_offset=0,
        project_dir=_set(found),
        roles=ROLES,
        formats=FORMATS,
    )
    assert formatted.key == evaluation_jobs(ev, _Settings())[0].key


def _set(_: Block) -> Path:
    root = Path(__import__("tempfile").mkdtemp())
    item = {
        "id": "cap",
        "kind": "fact",
        "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Capital of France?"}],
        "max_new_tokens": 6,
        "success": {"answer": "Paris"},
    }
    (root / "eval.jsonl").write_text(json.dumps(item) + "\n")
    (root / "scorers.py").write_text("def score(item, reply):\n    return True\n")
    return root


PAGE = """# Held constant

```generate model=base,base:tuned-format system="Be terse." max_new_tokens=6 id=q
Capital of France?
```

[The base model given the tuned format saw its turn markers]{check: "<start_of_turn>model" in q.base_tuned_format.input_text}.
"""


def test_a_build_sends_that_text_and_shows_the_column_and_its_exact_input(bare_site, fake):
    write_data(bare_site.root / "tuning.jsonl")
    bare_site.models["tuned"] = {
        "tune": {
            "start": "base",
            "conversations": "tuning.jsonl",
            "steps": 3,
            "learning_rate": 1e-3,
            "batch_size": 2,
            "seed": 0,
            "method": "full",
            "template": "gemma",
            "max_tokens": 64,
        }
    }
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    sent = [
        (r.model, r.request.prompt, r.request.template, r.request.stop)
        for runner in fake
        for call in runner.generate_calls
        for r in call
    ]
    assert set(sent) == {("base", "Capital of France?", "auto", ()), ("base", GEMMA_TEXT, "raw", ("<end_of_turn>",))}
    page = bare_site.html()
    assert '<span class="llmx-role">base:tuned-format</span>' in page and "chat template makes" in page
    assert html.escape("[base] " + GEMMA_TEXT, quote=False) in page  # the exact input display shows the formatted text
    assert "llmx-claim-true" in page and len(outputs(page)) == 2
