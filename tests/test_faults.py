"""Faults (time, exceptions, crashes, memory) are reported on their own block with its own limit, whatever came before."""

from __future__ import annotations

import logging

import pytest
from mkdocs.exceptions import Abort

from llmexec.core.settings import load_settings
from llmexec.errors import ConfigError
from test_notebooks import JUPYTER, notebook

BIG = 'print("x" * 2_000_000)'  # an outcome line far larger than a pipe's buffer


def page(*blocks: str) -> str:
    """A Markdown page: a title, then each block as `fence-options\\ncode`, 4 lines apart for simple line numbers."""
    parts = ["# F\n"]
    for block in blocks:
        options, code = block.split("\n", 1)
        parts.append(f"```python exec{options}\n{code}\n```\n")
    return "\n".join(parts)


def messages(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records)


def build_failing(site) -> None:
    with pytest.raises(Abort):
        site.build()


def test_a_hang_after_a_large_output_is_reported_on_its_own_line_with_its_own_limit(site, caplog):
    site.llm_exec["timeout"] = 20
    site.write(
        "docs/index.md",
        page('\nprint("one")', f"\n{BIG}", '\nprint("three" + "!")', " timeout=1\nwhile True:\n    pass"),
    )
    build_failing(site)
    log = messages(caplog)
    assert "docs/index.md:15: code block ran past its time limit" in log and "time limit of 1 s" in log
    assert "docs/index.md:11" not in log and "time limit of 20 s" not in log
    html = site.html()
    assert "three!" in html and "output cut: 2000001 bytes in all" in html
    assert "This block ran past its time limit (docs/index.md:15)" in html


@pytest.mark.parametrize(
    "fault, reported",
    [
        ("raise ValueError('boom')", "code block raised an exception"),
        ("import os\nos._exit(3)", "code block crashed"),
    ],
)
def test_an_exception_or_crash_after_a_large_output_is_reported_on_its_own_line(site, caplog, fault, reported):
    # the fast block before the fault has a short limit: a fault blamed on it would say "time limit of 1 s"
    site.llm_exec["timeout"] = 20
    site.write(
        "docs/index.md", page(f"\n{BIG}", ' timeout=1\nprint("two" + "!")', f"\nimport time\ntime.sleep(2)\n{fault}")
    )
    build_failing(site)
    log = messages(caplog)
    assert f"docs/index.md:11: {reported}" in log
    assert "docs/index.md:7" not in log and "time limit" not in log
    assert "two!" in site.html()


def test_after_a_resume_faults_are_reported_on_their_own_block(site, caplog):
    caplog.set_level(logging.INFO, logger="mkdocs")
    site.llm_exec["timeout"] = 20
    first = ["\nx = 1", "\nx += 1", f"\n{BIG}", '\nprint("four", x)']
    site.write("docs/index.md", page(*first))
    site.build()
    assert "four 2" in site.html()
    site.write("docs/index.md", page(*first[:3], ' timeout=1\nprint("five", x)\nwhile True:\n    pass'))
    build_failing(site)  # resumes from the last block: the first three come back "restored"
    log = messages(caplog)
    assert "from block 4, the state before it restored" in log
    assert "docs/index.md:15: code block ran past its time limit" in log and "time limit of 1 s" in log
    assert "docs/index.md:3:" not in log and "docs/index.md:7:" not in log and "docs/index.md:11:" not in log
    caplog.clear()
    site.write("docs/index.md", page(*first[:3], f"\n{BIG}", "\nimport time\ntime.sleep(2)\nraise ValueError(x)"))
    build_failing(site)
    log = messages(caplog)
    assert "docs/index.md:19: code block raised an exception" in log and "ValueError: 2" in log
    assert "time limit" not in log


def test_in_a_notebook_a_hang_after_a_large_output_is_reported_on_its_own_cell_resumed_or_not(site, caplog):
    site.yaml = JUPYTER
    site.llm_exec["timeout"] = 20
    site.write("docs/index.md", "# Home\n")
    cells = [("code", "x = 1"), ("code", BIG), ("code", "print('three' + '!')")]
    for hang in ("while True:\n    pass", "x = 0\nwhile True:\n    pass"):  # the second build resumes at cell 4
        caplog.clear()
        nb = notebook(*cells, ("code", hang)).replace(
            '"id": "cell3", "cell_type": "code", "metadata": {"tags": []}',
            '"id": "cell3", "cell_type": "code", "metadata": {"tags": [], "llm-exec": {"timeout": 1}}',
        )
        site.write("docs/nb.ipynb", nb)
        build_failing(site)
        log = messages(caplog)
        assert "docs/nb.ipynb: cell 4: code cell ran past its time limit" in log and "time limit of 1 s" in log
        assert "cell 2:" not in log and "cell 3:" not in log
        assert "three!" in site.html("nb/index.html")


def test_a_block_that_keeps_allocating_is_stopped_at_its_memory_limit_and_the_build_goes_on(site, caplog):
    site.llm_exec["memory_limit"] = 0.5
    # bounded (3 GB) so that a build without the limit cannot hurt the machine; touched bytes, not lazy zeros
    site.write(
        "docs/index.md",
        page(
            '\nprint("before")',
            "\nchunks = []\nfor _ in range(60):\n    chunks.append(b'x' * 50_000_000)\n"
            "print('survived', len(chunks), 'chunks')",
        ),
    )
    site.write("docs/after.md", "# A\n\n```python exec\nprint('next page' + ' fine')\n```\n")
    build_failing(site)
    log = messages(caplog)
    assert "docs/index.md:7: code block ran past its memory limit" in log
    assert "ran past its memory limit of 0.5 GB" in log
    assert "survived 60 chunks" not in site.html() and "before" in site.html()
    assert "next page fine" in site.html("after/index.html")


@pytest.mark.parametrize("value", [0, -1, "lots"])
def test_a_memory_limit_must_be_a_positive_number_of_gb(tmp_path, value):
    with pytest.raises(ConfigError) as err:
        load_settings({"llm_exec": {"memory_limit": value}}, tmp_path)
    assert "extra.llm_exec.memory_limit" in str(err.value) and "--> " in str(err.value)
    assert load_settings({"llm_exec": {"memory_limit": 1.5}}, tmp_path).memory_limit == 1.5
