"""Notebooks under docs/: executed by the same engine (keys per code cell), rendered by mkdocs-jupyter."""

from __future__ import annotations

import json

import pytest
from mkdocs.exceptions import Abort

from conftest import calls

JUPYTER = ["plugins:", "  - mkdocs-jupyter:", '      include: ["*.ipynb"]', "      execute: false",
           "      allow_errors: false", "      include_requirejs: false"]


def notebook(*cells: tuple[str, str], tags: dict[int, list[str]] | None = None) -> str:
    """An .ipynb stored as in git: no outputs."""
    out = []
    for i, (kind, source) in enumerate(cells):
        cell = {"id": f"cell{i}", "cell_type": kind, "metadata": {"tags": (tags or {}).get(i, [])},
                "source": source.splitlines(True)}
        if kind == "code":
            cell.update(outputs=[], execution_count=None)
        out.append(cell)
    return json.dumps({"cells": out, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                       "language": "python"}}, "nbformat": 4, "nbformat_minor": 5})


CELLS = [("markdown", "# A notebook\n\nIntro."), ("code", "x = 20"), ("markdown", "More prose."),
         ("code", "x += 1\nprint('x is', x)"), ("code", "print(x * 2)")]


@pytest.fixture
def nb_site(bare_site):
    bare_site.yaml = JUPYTER
    bare_site.write("docs/index.md", "# Home\n")
    return bare_site


def test_cells_run_in_order_and_outputs_appear_in_the_rendered_page(nb_site, fake):
    nb_site.write("docs/nb.ipynb", notebook(*CELLS))
    nb_site.build()
    html = nb_site.html("nb/index.html")
    assert "ran: x += 1" in html and "ran: print(x * 2)" in html
    (call,) = fake[0].code_calls
    assert [b.filename for b in call] == ["docs/nb.ipynb: cell 2", "docs/nb.ipynb: cell 4", "docs/nb.ipynb: cell 5"]
    assert all(b.display_last for b in call)
    assert "outputs" not in json.loads((nb_site.root / "docs" / "nb.ipynb").read_text())["cells"][1] or \
        json.loads((nb_site.root / "docs" / "nb.ipynb").read_text())["cells"][1]["outputs"] == []  # docs/ untouched
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
    site.write("docs/rich.ipynb", notebook(
        ("code", "import matplotlib.pyplot as plt\nplt.bar(['a', 'b'], [0.7, 0.3])\nplt.title('probabilities')"),
        ("code", "class Table:\n    def _repr_html_(self):\n        return '<table><tr><td>cell</td></tr></table>'\nTable()"),
        ("code", "Table()"),
        ("code", "print(instruct.generate('hello', max_new_tokens=3).finish_reason)\n1 + 1"),
        tags={2: ["llm-exec:trusted-html"]}))
    site.write("docs/broken.ipynb", notebook(("code", "x = 1\n\nx.missing"), ("code", "print('never')")))
    site.write("docs/slow.ipynb", json.dumps({**json.loads(notebook(("code", "import time\ntime.sleep(60)"))),
                                                 "cells": [{"id": "slow", "cell_type": "code", "execution_count": None, "outputs": [],
                                                            "metadata": {"llm-exec": {"timeout": 2}},
                                                            "source": ["import time\n", "time.sleep(60)"]}]}))
    with pytest.raises(Abort):
        site.build()
    rich = site.html("rich/index.html")
    assert '<img src="data:image/png;base64,' in rich or 'src="data:image/png;base64,' in rich
    assert "&lt;table&gt;&lt;tr&gt;&lt;td&gt;cell" in rich  # untrusted HTML is text
    assert "<table><tr><td>cell</td></tr></table>" in rich  # the tagged cell's HTML is rendered
    assert "ran with instruct = tiny-instruct (test model)" in rich
    assert ">2<" in rich or "2</pre>" in rich  # the last expression's value, like Out[]
    assert "docs/broken.ipynb: cell 1: code cell raised an exception" in caplog.text
    assert 'File "docs/broken.ipynb: cell 1", line 3' in caplog.text and "AttributeError" in caplog.text
    assert "docs/slow.ipynb: cell 1: code cell ran past its time limit" in caplog.text
    assert "not run: the block at docs/broken.ipynb: cell 1 failed" in site.html("broken/index.html")


def test_editing_a_code_cell_re_executes_from_that_cell_on(site, tmp_path):
    site.yaml = JUPYTER
    site.write("docs/index.md", "# Home\n")
    runs = tmp_path / "runs.txt"
    cells = [("code", f"open({str(runs)!r}, 'a').write('1')\nx = 5"), ("markdown", "Prose."),
             ("code", f"open({str(runs)!r}, 'a').write('2')\nx *= 2"),
             ("code", f"open({str(runs)!r}, 'a').write('3')\nprint('x =', x)")]
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
