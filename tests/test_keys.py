"""Keys: same inputs give the same key; changing any field that affects output gives a new one."""

from dataclasses import replace
from pathlib import Path

from llmexec.core.models import ModelSpec
from llmexec.plan.blocks import find_blocks
from llmexec.plan.keys import code_keys, generate_key
from llmexec.plan.page import jobs

MODELS = {
    "base": ModelSpec("base", "preset", "gemma-3-270m"),
    "instruct": ModelSpec("instruct", "preset", "smollm2-135m-instruct"),
}


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
    request = replace(block.request, max_new_tokens=48)
    key = generate_key(request, MODELS["base"])
    assert key == generate_key(
        replace(replace(block, line=99, page="elsewhere.md").request, max_new_tokens=48), MODELS["base"]
    )
    variants = [
        generate_key(replace(request, prompt="Hello!"), MODELS["base"]),
        generate_key(request, MODELS["instruct"]),
        generate_key(replace(request, max_new_tokens=49), MODELS["base"]),
        generate_key(replace(request, system="Be brief."), MODELS["base"]),
        generate_key(replace(request, template="raw"), MODELS["base"]),
    ]
    assert len({key, *variants}) == 6


def test_local_folder_identity_follows_its_bytes(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    spec = ModelSpec("base", "path", str(tmp_path))
    first = spec.identity
    (tmp_path / "config.json").write_text('{"changed": true}')
    assert spec.identity != first


PINNED = {  # cache keys of the lockfile's era: a change to the key's fields, names or values re-executes every block
    "```generate\nWhat is the capital of France?\n```\n": [
        ("base", "a7bc05335064215f118ca4fc5435c004dbcc7ba8595ec6ceb46c398a4d7252cb"),
        ("instruct", "95fed366b647fc98cad893381ccdb13c1d37f8ddd767d8628e87cd0bf217daa1"),
    ],
    '```generate model=base prefill="Sure:\\n" stop="\\n" stop="." seed=3 temperature=0.7 top_p=0.9 max_new_tokens=20\n'
    "Tell me a colour.\n```\n": [("base", "fb3d50ad1d729cc71b6ee8c58c4fe5e0a493f652b2fe444d8ddb0ff4a871fb16")],
    '```generate model=instruct system="Be terse." template=chat generation_prompt=false\nHi\n```\n': [
        ("instruct", "b19e3ca625dcfb1cd9bb662dfff645bc4e0305c1becf2763f31e28eebcf393f2")
    ],
}


class Site:
    models, max_new_tokens = MODELS, 48


def test_generate_keys_stay_byte_identical_to_the_pinned_ones():
    for fence, expected in PINNED.items():
        assert [(job.role, job.key) for job in jobs(blocks(fence), Site())] == expected, fence


def test_a_new_option_joins_the_key_only_when_set():
    plain = "```generate\nWhat is the capital of France?\n```\n"
    penalised = [job.key for job in jobs(blocks(plain.replace("generate", "generate repetition_penalty=1.3")), Site())]
    explicit_default = [
        job.key for job in jobs(blocks(plain.replace("generate", "generate repetition_penalty=1")), Site())
    ]
    assert explicit_default == [key for _, key in PINNED[plain]]
    assert not set(penalised) & set(explicit_default)
