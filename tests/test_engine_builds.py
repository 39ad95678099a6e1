"""Real `mkdocs build` runs into tmp_path with an injected fake runner: rendering, caching, errors, escaping."""

from __future__ import annotations

import re

import pytest
from mkdocs.exceptions import Abort

from conftest import calls

PAGE = """
---
title: Front matter shifts lines
---
# Demo

Intro prose.

```python exec
x = 1
```

```generate model=both max_new_tokens=5
Say <b>hi</b> & bye
```
"""


def test_outputs_are_rendered_escaped_and_labelled(bare_site, fake):
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    html = bare_site.html()
    assert "ran: x = 1" in html
    assert "ran with base = fake-base" in html
    assert "&lt;script&gt;alert(&#x27;base&#x27;)&lt;/script&gt;" in html  # model output stays text
    assert "<script>alert(" not in html
    assert "[instruct] Say &lt;b&gt;hi&lt;/b&gt; &amp; bye" in html  # the input the model received
    assert "fake-base" in html and "fake-instruct" in html
    assert "reached max_new_tokens (5)" in html
    assert 'class="llmx-generate llmx-cols-2"' in html
    assert (bare_site.root / "site" / "assets" / "llm-exec.css").is_file()


def test_second_build_and_prose_edits_execute_nothing(bare_site, fake):
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    assert calls(fake) == 2
    bare_site.build()
    bare_site.write("docs/index.md", PAGE.replace("Intro prose.", "Rewritten intro, longer.\n\nAnd a new paragraph."))
    bare_site.build()
    assert calls(fake) == 2
    assert "ran: x = 1" in bare_site.html()


def test_changing_code_prompt_or_model_executes_again(bare_site, fake):
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    bare_site.write("docs/index.md", PAGE.replace("x = 1", "x = 2").replace("bye", "goodbye"))
    bare_site.build()
    assert calls(fake) == 4
    (bare_site.root.parent / "fake-base" / "weights.txt").write_text("fake base v2")  # new weights
    bare_site.build()
    code, generate = fake[-1].code_calls[-1], fake[-1].generate_calls[-1]
    assert [r.model for r in generate] == ["base"]  # only the changed model's answers are redone
    assert code[0].code == "x = 2"


def test_a_raising_block_fails_the_strict_build_with_page_and_line(bare_site, fake, caplog):
    bare_site.write(
        "docs/index.md", PAGE.replace("x = 1", "raise ValueError('boom')") + "\n```python exec\nprint(2)\n```\n"
    )
    with pytest.raises(Abort, match="strict mode"):
        bare_site.build()
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "docs/index.md:8: code block raised an exception" in messages
    assert "ValueError: boom" in messages and "--> fix the code" in messages
    assert not (bare_site.root / ".cache" / "llm-exec" / "results").exists() or all(
        "boom" not in p.read_text() for p in (bare_site.root / ".cache").rglob("*.json")
    )


def test_without_strict_the_page_shows_the_error_and_the_skipped_block(bare_site, fake):
    bare_site.write(
        "docs/index.md", PAGE.replace("x = 1", "raise ValueError('boom')") + "\n```python exec\nprint(2)\n```\n"
    )
    bare_site.build(strict=False)
    html = bare_site.html()
    assert "This block raised an exception (docs/index.md:8)" in html
    assert "ValueError: boom" in html and "partial" in html
    assert "not run: the block at docs/index.md:8 failed" in html


def test_block_problems_are_reported_with_the_fix(bare_site, fake, caplog):
    bare_site.write("docs/index.md", "# T\n\n```generate model=gpt\nhello\n```\n")
    with pytest.raises(Abort):
        bare_site.build()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "docs/index.md:3: generate block names unknown model 'gpt'" in text
    assert calls(fake) == 0


# Modules a cached build of generate and code pages never uses: each loads when a page or setting needs it, so a
# build's start-up skips them (issue 21: the cached build's fixed cost over plain MkDocs).
ON_DEMAND = {
    "llmexec.core.preferences",
    "llmexec.core.ranking",
    "llmexec.core.recipes",
    "llmexec.core.templates",
    "llmexec.present.evidence",
    "llmexec.resolve.deferred",
    "llmexec.resolve.worker_process",
    "llmexec.core.launch",
    "llmexec.plan.claims",
    "llmexec.plan.evaluate",
    "llmexec.plan.notebooks",
    "llmexec.present.checks",
    "llmexec.present.evaluation",
    "llmexec.present.notebooks",
    "llmexec.present.report",
    "llmexec.plan.tokens",
    "llmexec.present.tokens",
    "llmexec.resolve.mismatch",
    "llmexec.resolve.ranks",
    "llmexec.resolve.since",
    "llmexec.resolve.tolerance",
}
PRINT_LOADED = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('loaded:', *sorted(m for m in sys.modules if m.startswith('llmexec.')), "
    "file=sys.stderr))"
)


def test_a_cached_build_of_generate_and_code_pages_loads_no_module_they_do_not_use(bare_site, fake):
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    done = bare_site.build_cli(prelude=PRINT_LOADED)  # a fresh interpreter: what this build alone imported
    assert done.returncode == 0, done.stderr[-2000:]
    assert "0 blocks executed, 3 from cache" in done.stderr
    found = re.search(r"^loaded: (.*)$", done.stderr, re.M)
    assert found, done.stderr[-2000:]
    loaded = set(found.group(1).split())
    assert {"llmexec.plan.page", "llmexec.present.page", "llmexec.resolve.store"} <= loaded
    assert loaded & ON_DEMAND == set()


def test_pages_without_blocks_never_start_a_runner(bare_site, fake):
    bare_site.write("docs/index.md", "# Plain\n\n```python\nprint('shown, not run')\n```\n")
    bare_site.build()
    assert fake == []
    assert "shown, not run" in bare_site.html()


def test_blocks_inside_tabs_and_admonitions_render_in_place(bare_site, fake):
    bare_site.write(
        "docs/index.md",
        """
        # Nested

        === "Tab one"

            ```python exec
            y = 'in a tab'
            ```

        !!! note
            ```generate model=instruct
            hi
            ```
        """,
    )
    bare_site.build()
    html = bare_site.html()
    assert "ran: y = &#x27;in a tab&#x27;" in html or "ran: y = 'in a tab'" in html
    assert html.index("tabbed-set") < html.index("ran: y =")
    assert html.index('class="admonition note"') < html.index("llmx-instruct")


def test_rendered_output_is_an_explicit_opt_in(bare_site, fake):
    bare_site.write(
        "docs/index.md",
        """
        # Opt-in

        ```python exec show=output output=markdown
        md = 1
        ```

        ```python exec output=html
        raw = 2
        ```

        ```python exec
        text = 3
        ```
        """,
    )
    bare_site.build()
    html = bare_site.html()
    assert "<p>ran: md = 1</p>" in html  # Markdown output became page content, code hidden
    assert '<span class="n">md</span>' not in html
    assert '<div class="llmx-html">ran: raw = 2\n</div>' in html
    assert '<pre class="llmx-text"><code>ran: text = 3' in html


def test_unknown_output_format_is_a_problem(bare_site, fake, caplog):
    bare_site.write("docs/index.md", "# x\n\n```python exec output=pdf\nprint(1)\n```\n")
    with pytest.raises(Abort):
        bare_site.build()
    assert "docs/index.md:3: output='pdf' is not an output format" in caplog.text
