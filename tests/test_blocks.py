"""Finding executable fences in real Markdown: kinds, options, lines, includes and mistakes."""

import random
import shlex
from pathlib import Path

from llmexec.plan.blocks import Block, Problem, _parse_options, find_blocks

PAGE = "docs/page.md"


def parse(markdown: str, tmp_path: Path, offset: int = 0) -> list:
    return find_blocks(markdown, page=PAGE, line_offset=offset, project_dir=tmp_path)


def test_code_and_generate_blocks_with_their_lines(tmp_path):
    md = "# T\n\nProse.\n\n```python exec\nprint(1)\n```\n\n```generate model=base max_new_tokens=7\nHello there\n```\n"
    code, gen = parse(md, tmp_path, offset=3)
    assert isinstance(code, Block) and code.kind == "code"
    assert (code.line, code.first_line, code.source, code.start, code.end) == (8, 9, "print(1)", 4, 7)
    assert isinstance(gen, Block) and gen.kind == "generate"
    assert (gen.line, gen.models, gen.request.max_new_tokens, gen.source) == (12, ("base",), 7, "Hello there")


def test_fence_options_are_split_as_a_shell_splits_them():
    """Options without quotes or escapes skip shlex (a cached build's start-up): the words must be the same."""
    rng = random.Random(21)
    for _ in range(3000):
        text = "".join(rng.choice("ab=#' \t\n\x0c\xa0") for _ in range(rng.randint(0, 12)))
        try:
            words = shlex.split(text)
        except ValueError:
            continue
        assert _parse_options(text) == {w.partition("=")[0]: w.partition("=")[2] for w in words}


def test_plain_fences_and_fences_shown_inside_longer_fences_are_left_alone(tmp_path):
    md = "```python\nprint('not run')\n```\n\n````markdown\n```python exec\nprint('an example')\n```\n````\n"
    assert parse(md, tmp_path) == []


def test_generate_defaults_to_both_models_and_keeps_prompt_spaces(tmp_path):
    (gen,) = parse('```generate system="Be terse."\n  Q: two spaces kept  \n```\n', tmp_path)
    assert gen.models == ("base", "instruct")
    assert gen.request.system == "Be terse."
    assert gen.source == "  Q: two spaces kept  "


def test_indented_block_inside_an_admonition(tmp_path):
    md = "!!! note\n    Text.\n\n    ```python exec\n    x = 1\n    print(x)\n    ```\n"
    (block,) = parse(md, tmp_path)
    assert block.indent == "    " and block.source == "x = 1\nprint(x)" and block.line == 4


def test_snippet_file_is_included_and_named_in_tracebacks(tmp_path):
    (tmp_path / "snippets").mkdir()
    (tmp_path / "snippets" / "demo.py").write_text("\n\nprint('from file')\n")
    (block,) = parse('```python exec file="snippets/demo.py"\n```\n', tmp_path)
    assert block.source == "print('from file')"
    assert (block.filename, block.first_line, block.title) == ("snippets/demo.py", 3, "snippets/demo.py")


def test_mistakes_are_problems_with_page_line_and_fix(tmp_path):
    md = (
        "```generate model=gpt5\nhi\n```\n\n```python exec colour=red\nx\n```\n\n"
        '```python exec file="snippets/missing.py"\n```\n\n```generate max_new_tokens=lots\nhi\n```\n\n'
        "```generate\n```\n\n```python exec timeout=-3\nx\n```\n"
    )
    problems = parse(md, tmp_path)
    assert all(isinstance(p, Problem) for p in problems)
    messages = [p.message() for p in problems]
    assert messages[0].startswith("docs/page.md:1: generate block names unknown model 'gpt5'")
    assert (
        "use model= one of base, instruct, a list such as model=base,instruct, model=both (base and instruct) or model=all"
        in messages[0]
    )
    assert "unknown option 'colour'" in messages[1] and "docs/page.md:5:" in messages[1]
    assert "snippets/missing.py" in messages[2] and "not found" in messages[2]
    assert "max_new_tokens='lots'" in messages[3]
    assert "no prompt" in messages[4]
    assert "timeout='-3'" in messages[5]
    assert all("\n  --> " in m for m in messages)


def test_unclosed_executable_fence_is_a_problem_not_a_runaway_block(tmp_path):
    (problem,) = parse("text\n\n```python exec\nprint(1)\n", tmp_path)
    assert isinstance(problem, Problem) and "never closed" in problem.reason and problem.line == 3
