"""Time limits: a generate block's `timeout=` is the limit of its own batch, and a notebook cell's is validated."""

from __future__ import annotations

import json
import re

import pytest
from mkdocs.exceptions import Abort

from test_notebooks import JUPYTER, notebook


def test_a_generate_blocks_timeout_bounds_its_own_batch_not_a_batch_of_others(site, caplog):
    """A block with a short limit is never batched with one that has a long limit (whose batch would report it
    done, within the long limit): it runs in its own batch, under its own limit. Today's code batched them
    together, and the short-limit block came back ok."""
    caplog.set_level("INFO")
    site.write(
        "docs/index.md",
        "# T\n\n```generate model=base max_new_tokens=4 timeout=60\nthe cat sat\n```\n\n"
        "```generate model=base max_new_tokens=4 timeout=0.001\na dog\n```\n",
    )
    with pytest.raises(Abort):
        site.build()
    sizes = re.findall(r"generating batch \d/\d: base model, (\d) prompt\(s\)", caplog.text)
    assert sizes and set(sizes) == {"1"}  # the timed-out batch's process is stopped; the other runs in a new one
    assert re.search(
        r"docs/index.md:\d+: generate block failed on the base model: stopped after its time limit "
        r"of 0.001 s",
        caplog.text,
    )
    assert "docs/index.md:3: generate block failed" not in caplog.text  # the block with 60 s ran


def test_blocks_with_equal_timeouts_still_share_a_batch(site, caplog):
    caplog.set_level("INFO")
    site.write(
        "docs/index.md",
        "# T\n\n"
        + "".join(
            f"```generate model=base max_new_tokens=3 timeout=30\n{p}\n```\n\n" for p in ("hello", "a dog", "the cat")
        ),
    )
    site.build()
    assert "generating batch 1/1: base model, 3 prompt(s)" in caplog.text


@pytest.mark.parametrize(("timeout", "shown"), [("soon", "'soon'"), (-5, "-5"), (0, "0"), (True, "True")])
def test_a_notebook_cells_bad_timeout_names_the_cell_and_the_fix(bare_site, fake, caplog, timeout, shown):
    bare_site.yaml = JUPYTER
    bare_site.write("docs/index.md", "# Home\n")
    cells = json.loads(notebook(("code", "x = 1"), ("code", "print(x)")))
    cells["cells"][1]["metadata"]["llm-exec"] = {"timeout": timeout}
    bare_site.write("docs/nb.ipynb", json.dumps(cells))
    with pytest.raises(Abort):
        bare_site.build()
    assert f"docs/nb.ipynb: cell 2: the cell's timeout must be a positive number of seconds, got {shown}" in caplog.text
    assert '--> set "llm-exec": {"timeout": 30} in the cell\'s metadata' in caplog.text
    assert calls_made(fake) == 0


def test_a_notebook_cells_timeout_reaches_the_runner(bare_site, fake):
    bare_site.yaml = JUPYTER
    bare_site.write("docs/index.md", "# Home\n")
    cells = json.loads(notebook(("code", "x = 1")))
    cells["cells"][0]["metadata"]["llm-exec"] = {"timeout": 7.5}
    bare_site.write("docs/nb.ipynb", json.dumps(cells))
    bare_site.build()
    assert [b.timeout for b in fake[0].code_calls[0]] == [7.5]


def calls_made(instances) -> int:
    return sum(len(r.code_calls) + len(r.generate_calls) for r in instances)
