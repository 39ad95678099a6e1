"""Notebooks under docs/: executed by the same engine (keys per code cell), rendered by mkdocs-jupyter."""

from __future__ import annotations

import base64
import json
import re
from html import escape

import pytest
from mkdocs.exceptions import Abort

from conftest import calls

JUPYTER = [
    "plugins:",
    "  - mkdocs-jupyter:",
    '      include: ["*.ipynb"]',
    "      execute: false",
    "      allow_errors: false",
    "      include_requirejs: false",
]


def notebook(*cells: tuple[str, str], tags: dict[int, list[str]] | None = None) -> str:
    """An .ipynb stored as in git: no outputs."""
    out = []
    for i, (kind, source) in enumerate(cells):
        cell = {
            "id": f"cell{i}",
            "cell_type": kind,
            "metadata": {"tags": (tags or {}).get(i, [])},
            "source": source.splitlines(True),
        }
        if kind == "code":
            cell.update(outputs=[], execution_count=None)
        out.append(cell)
    return json.dumps(
        {
            "cells": out,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


CELLS = [
    ("markdown", "# A notebook\n\nIntro."),
    ("code", "x = 20"),
    ("markdown", "More prose."),
    ("code", "x += 1\nprint('x is', x)"),
    ("code", "print(x * 2)"),
]


def cell_outputs(page: str, cell_id: str) -> list[tuple[str, str]]:
    """The rendered outputs of one notebook cell, in order: (MIME type, or the renderer's name for images; inner HTML)."""
    start = page.index(f'id="cell-id={cell_id}"')
    end = page.find('id="cell-id=', start + 1)
    section = page[start : end if end != -1 else len(page)]
    return [
        (mime or renderer, inner)
        for renderer, mime, inner in re.findall(
            r'<div class="jp-(\w+)[^"]* jp-OutputArea-output"(?: data-mime-type="([^"]+)")? tabindex="0">\n(.*?)\n</div>\n</div>',
            section,
            re.S,
        )
    ]


@pytest.fixture
def nb_site(bare_site):
    bare_site.yaml = JUPYTER
    bare_site.write("docs/index.md", "# Home\n")
    return bare_site


def test_cells_run_in_order_and_outputs_appear_in_the_rendered_page(nb_site, fake):
    source = nb_site.write("docs/nb.ipynb", notebook(*CELLS)).read_text()
    nb_site.build()
    html = nb_site.html("nb/index.html")
    caption = ("text/html", '<div class="llmx-caption">ran with base = fake-base</div>')
    assert cell_outputs(html, "cell3") == [("text/plain", "<pre>ran: x += 1\nprint('x is', x)\n</pre>"), caption]
    assert cell_outputs(html, "cell4") == [("text/plain", "<pre>ran: print(x * 2)\n</pre>"), caption]
    (call,) = fake[0].code_calls
    assert [b.filename for b in call] == ["docs/nb.ipynb: cell 2", "docs/nb.ipynb: cell 4", "docs/nb.ipynb: cell 5"]
    assert all(b.display_last for b in call)
    assert (nb_site.root / "docs" / "nb.ipynb").read_text() == source  # docs/ untouched: outputs go into a copy
    assert '<script src=""' not in html


def test_rebuilds_and_markdown_edits_execute_nothing_a_code_edit_runs_again(nb_site, fake):
    nb_site.write("docs/nb.ipynb", notebook(*CELLS))
    nb_site.build()
    nb_site.build()
    edited = list(CELLS)
    edited[2] = ("markdown", "Rewritten prose between the cells.")
    nb_site.write("docs/nb.ipynb", notebook(*edited))
    nb_site.build()
    assert calls(fake) == 1
    edited[4] = ("code", "print(x * 3)")
    nb_site.write("docs/nb.ipynb", notebook(*edited))
    nb_site.build()
    assert calls(fake) == 2
    assert "ran: print(x * 3)" in nb_site.html("nb/index.html")


def test_a_failing_cell_fails_the_strict_build_naming_the_cell(nb_site, fake, caplog):
    nb_site.write("docs/nb.ipynb", notebook(("code", "ok = 1"), ("code", "raise ValueError('bad')")))
    with pytest.raises(Abort):
        nb_site.build()
    assert "docs/nb.ipynb: cell 2: code cell raised an exception" in caplog.text


def test_preview_marks_changed_cells(nb_site, fake, monkeypatch):
    nb_site.write("docs/nb.ipynb", notebook(*CELLS))
    nb_site.build()
    monkeypatch.setenv("LLM_EXEC_MODE", "preview")
    nb_site.write("docs/nb.ipynb", notebook(*CELLS[:4], ("code", "print('changed')")))
    nb_site.build()
    assert "Not executed in this preview" in nb_site.html("nb/index.html")
    assert calls(fake) == 1


def test_real_worker_rich_outputs_tracebacks_and_time_limits(site, caplog):
    site.yaml = JUPYTER
    site.llm_exec["timeout"] = 20
    site.write("docs/index.md", "# Home\n")
    site.write(
        "docs/rich.ipynb",
        notebook(
            ("code", "import matplotlib.pyplot as plt\nplt.bar(['a', 'b'], [0.7, 0.3])\nplt.title('probabilities')"),
            (
                "code",
                "class Table:\n    def _repr_html_(self):\n        return '<table><tr><td>cell</td></tr></table>'\nTable()",
            ),
            ("code", "Table()"),
            ("code", "print(instruct.generate('hello', max_new_tokens=3).finish_reason)\n1 + 1"),
            tags={2: ["llm-exec:trusted-html"]},
        ),
    )
    site.write("docs/broken.ipynb", notebook(("code", "x = 1\n\nx.missing"), ("code", "print('never')")))
    site.write(
        "docs/slow.ipynb",
        json.dumps(
            {
                **json.loads(notebook(("code", "import time\ntime.sleep(60)"))),
                "cells": [
                    {
                        "id": "slow",
                        "cell_type": "code",
                        "execution_count": None,
                        "outputs": [],
                        "metadata": {"llm-exec": {"timeout": 2}},
                        "source": ["import time\n", "time.sleep(60)"],
                    }
                ],
            }
        ),
    )
    with pytest.raises(Abort):
        site.build()
    rich = site.html("rich/index.html")
    text, image = cell_outputs(rich, "cell0")  # the chart cell: its last value, then the figure as a PNG
    assert text == ("text/plain", "<pre>Text(0.5, 1.0, 'probabilities')</pre>") and image[0] == "RenderedImage"
    png = re.fullmatch(r'<img alt="[^"]*" class="" src="data:image/png;base64,([A-Za-z0-9+/=]+)"/>', image[1])
    assert png and base64.b64decode(png[1]).startswith(b"\x89PNG\r\n\x1a\n")
    table = "<table><tr><td>cell</td></tr></table>"
    assert cell_outputs(rich, "cell1") == [("text/plain", f"<pre>{escape(table)}</pre>")]  # untrusted HTML is text
    assert cell_outputs(rich, "cell2") == [("text/html", table)]  # the tagged cell's HTML is rendered
    printed, value, caption = cell_outputs(rich, "cell3")
    assert printed in [("text/plain", "<pre>eos\n</pre>"), ("text/plain", "<pre>length\n</pre>")]
    assert value == ("text/plain", "<pre>2</pre>")  # the last expression's value, like Out[]
    assert caption == ("text/html", '<div class="llmx-caption">ran with instruct = tiny-instruct (test model)</div>')
    assert "docs/broken.ipynb: cell 1: code cell raised an exception" in caplog.text
    assert 'File "docs/broken.ipynb: cell 1", line 3' in caplog.text and "AttributeError" in caplog.text
    assert "docs/slow.ipynb: cell 1: code cell ran past its time limit" in caplog.text
    assert cell_outputs(site.html("broken/index.html"), "cell1") == [
        (
            "application/vnd.jupyter.stderr",
            "<pre>not run: the block at docs/broken.ipynb: cell 1 failed, "
            "and later blocks on a page depend on the earlier ones\n</pre>",
        )
    ]


def test_editing_a_code_cell_re_executes_from_that_cell_on(site, tmp_path):
    site.yaml = JUPYTER
    site.write("docs/index.md", "# Home\n")
    runs = tmp_path / "runs.txt"
    cells = [
        ("code", f"open({str(runs)!r}, 'a').write('1')\nx = 5"),
        ("markdown", "Prose."),
        ("code", f"open({str(runs)!r}, 'a').write('2')\nx *= 2"),
        ("code", f"open({str(runs)!r}, 'a').write('3')\nprint('x =', x)"),
    ]
    site.write("docs/nb.ipynb", notebook(*cells))
    site.build()
    site.write("docs/nb.ipynb", notebook(*cells[:1], ("markdown", "Other prose."), *cells[2:]))
    site.build()
    assert runs.read_text() == "123"  # a Markdown cell edit executes nothing
    cells[3] = ("code", f"open({str(runs)!r}, 'a').write('3')\nprint('x is now', x)")
    site.write("docs/nb.ipynb", notebook(*cells))
    site.build()
    assert runs.read_text() == "1233"  # only the edited cell (cell 4) ran
    assert "x is now 10" in site.html("nb/index.html")
