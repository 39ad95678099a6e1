"""Keys: same inputs give the same key; changing any field that affects output gives a new one."""

from dataclasses import replace
from pathlib import Path

from llmexec.plan.blocks import find_blocks
from llmexec.plan.keys import code_keys, generate_key
from llmexec.core.models import ModelSpec

MODELS = {"base": ModelSpec("base", "preset", "gemma-3-270m"), "instruct": ModelSpec("instruct", "preset", "smollm2-135m-instruct")}


def blocks(markdown: str):
    return find_blocks(markdown, page="p.md", line_offset=0, project_dir=Path("."))


PAGE = "# Title\n\nSome prose.\n\n```python exec\nx = 1\n```\n\nMore prose.\n\n```python exec\nprint(x)\n```\n"


def test_prose_edits_and_whitespace_do_not_change_code_keys():
    edited = PAGE.replace("Some prose.", "Completely rewritten prose,\nover two lines.").replace("x = 1", "x = 1   ")
    assert code_keys(blocks(PAGE), MODELS) == code_keys(blocks(edited), MODELS)


def test_a_code_edit_changes_that_key_and_every_later_one():
    before = code_keys(blocks(PAGE), MODELS)
    after = code_keys(blocks(PAGE.replace("x = 1", "x = 2")), MODELS)
    assert before[0] != after[0] and before[1] != after[1]
    only_last = code_keys(blocks(PAGE.replace("print(x)", "print(x + 1)")), MODELS)
    assert only_last[0] == before[0] and only_last[1] != before[1]


def test_model_identity_changes_every_key():
    other = {**MODELS, "instruct": ModelSpec("instruct", "hub", "HuggingFaceTB/SmolLM2-135M-Instruct", "a" * 40)}
    assert set(code_keys(blocks(PAGE), MODELS)).isdisjoint(code_keys(blocks(PAGE), other))


def test_generate_key_covers_prompt_model_and_settings_only():
    (block,) = blocks("```generate\nHello\n```\n")
    key = generate_key(block, MODELS["base"], 48)
    assert key == generate_key(replace(block, line=99, page="elsewhere.md"), MODELS["base"], 48)
    variants = [
        generate_key(replace(block, source="Hello!"), MODELS["base"], 48),
        generate_key(block, MODELS["instruct"], 48),
        generate_key(block, MODELS["base"], 49),
        generate_key(replace(block, system="Be brief."), MODELS["base"], 48),
        generate_key(replace(block, template="raw"), MODELS["base"], 48),
    ]
    assert len({key, *variants}) == 6


def test_local_folder_identity_follows_its_bytes(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    spec = ModelSpec("base", "path", str(tmp_path))
    first = spec.identity
    (tmp_path / "config.json").write_text('{"changed": true}')
    assert spec.identity != first
