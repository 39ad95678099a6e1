"""One engine, three renderers: this site from its committed lockfile under MkDocs, ProperDocs and Zensical."""

from __future__ import annotations

import html
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT

BIN = Path(sys.executable).parent
# A plain shell: no PYTHONPATH, so every renderer finds the engine as installed (make setup: pip install -e .).
ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    "NO_MKDOCS_2_WARNING": "1",
    "LLM_EXEC_MODE": "locked",
}


def copy_project(target: Path) -> Path:
    for name in ("docs", "snippets", "hooks", "tuning", "llm-exec.lock"):
        shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "mkdocs.yml", target / "mkdocs.yml")
    return target


def build(project: Path, renderer: str, site: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = {
        "mkdocs": [str(BIN / "mkdocs"), "build", "--strict", "-d", site],
        "properdocs": [str(BIN / "properdocs"), "build", "--strict", "-d", site],
        "zensical": [str(BIN / "zensical"), "build"],
    }[renderer]
    return subprocess.run(
        command, cwd=project, capture_output=True, text=True, timeout=600, env={**ENV, "SITE_DIR": site, **env}
    )


def outputs(site: Path) -> dict[str, list[tuple[str, str]]]:
    """Per page, every executed output in order: model inputs and outputs, printed text, footers, and the text of
    outputs rendered as Markdown (tables), taken from the article alone (the themes differ around it)."""
    found = {}
    for page in sorted(site.rglob("index.html")):
        text = page.read_text(encoding="utf-8")
        article = re.search(r"<article[^>]*>(.*?)</article>", text, re.S)
        body = article.group(1) if article else text  # the mkdocs theme has no <article>
        items = [
            (kind, html.unescape(value).strip())
            for kind, value in re.findall(r'<pre class="(llmx-[a-z]+)"><code>(.*?)</code></pre>', body, re.S)
        ]
        items += [("footer", f) for f in re.findall(r"<footer>(.*?)</footer>", body, re.S)]
        items += [
            ("table", " ".join(re.sub(r"<[^>]+>", " ", t).split()))
            for t in re.findall(r"<table>(.*?)</table>", body, re.S)
        ]
        items += [("claim", c) for c in re.findall(r'class="llmx-claim (llmx-claim-[a-z]+)"', body)]
        found[page.relative_to(site).as_posix()] = items
    return found


@pytest.fixture(scope="module")
def three_builds(tmp_path_factory) -> tuple[Path, dict[str, subprocess.CompletedProcess[str]]]:
    project = copy_project(tmp_path_factory.mktemp("renderers") / "project")
    return project, {name: build(project, name, f"site-{name}") for name in ("mkdocs", "properdocs", "zensical")}


def test_mkdocs_and_zensical_give_the_same_output_for_every_block(three_builds):
    project, results = three_builds
    for name in ("mkdocs", "zensical"):
        assert results[name].returncode == 0, results[name].stderr[-3000:]
    mkdocs, zensical = outputs(project / "site-mkdocs"), outputs(project / "site-zensical")
    pages = [p for p in mkdocs if mkdocs[p] and p != "notebook/index.html"]
    assert len(pages) >= 5 and sum(len(mkdocs[p]) for p in pages) > 100
    for page in pages:
        assert zensical[page] == mkdocs[page], page
    assert "```generate" not in (project / "site-zensical" / "index.html").read_text()


def test_under_zensical_the_notebook_links_say_they_lead_to_the_raw_file(three_builds):
    project, _ = three_builds
    home = (project / "site-zensical" / "index.html").read_text()
    assert "a raw notebook: this renderer cannot show it with its outputs" in home
    assert (project / "site-zensical" / "notebook.ipynb").is_file()
    assert "llmx-" in (project / "site-mkdocs" / "notebook" / "index.html").read_text()  # MkDocs renders it, run


def test_properdocs_builds_the_same_site(three_builds):
    project, results = three_builds
    assert results["properdocs"].returncode == 0, results["properdocs"].stderr[-3000:]
    assert "0 blocks executed" in results["properdocs"].stderr
    assert outputs(project / "site-properdocs") == outputs(project / "site-mkdocs")


def test_mkdocs_serve_in_a_plain_shell_serves_the_pages_with_their_outputs(three_builds):
    """`mkdocs serve`, what every MkDocs user types, with no PYTHONPATH: it starts, and a page has its outputs."""
    project, _ = three_builds
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = project / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(BIN / "mkdocs"), "serve", "--no-livereload", "-a", f"127.0.0.1:{port}"],
            cwd=project,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**ENV, "SITE_DIR": "site"},
        )
    try:
        page, deadline = "", time.monotonic() + 120
        while not page and time.monotonic() < deadline and server.poll() is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/base-models/", timeout=5).read().decode()
            except OSError:
                time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert page, log.read_text()[-3000:]
    assert '<pre class="llmx-output"><code>' in page and "```generate" not in page


SMALL = {
    "mkdocs.yml": "site_name: t\nsite_dir: !ENV [SITE_DIR, site]\nmarkdown_extensions: [llmexec.adapters.markdown]\n"
    "extra: {llm_exec: {models: {base: {path: %s}, instruct: {path: %s}}}}\n",
    "docs/index.md": "# T\n\nProse.\n\n```generate model=base\nhello\n```\n",
}


def small_site(root: Path, tiny_models: dict[str, Path], hook: bool = False) -> Path:
    (root / "docs").mkdir(parents=True)
    config = SMALL["mkdocs.yml"] % (tiny_models["base"], tiny_models["instruct"])
    if hook:
        config += f"hooks: [{ROOT / 'hooks' / 'llm_exec.py'}]\n"
    (root / "mkdocs.yml").write_text(config)
    (root / "docs" / "index.md").write_text(SMALL["docs/index.md"])
    return root


def test_zensical_never_shows_a_block_it_has_no_result_for(tmp_path, tiny_models):
    project = small_site(tmp_path / "p", tiny_models)
    done = build(project, "zensical", "site")
    assert done.returncode != 0
    assert "docs/index.md:5: no lockfile entry matches this block, and locked mode never executes" in done.stderr
    assert "make lock" in done.stderr


def test_zensical_fails_on_a_notebook_it_cannot_render_unless_told_to_note_it(tmp_path, tiny_models):
    project = small_site(tmp_path / "p", tiny_models)
    (project / "docs" / "index.md").write_text("# T\n\nSee [the notebook](nb.ipynb).\n")
    (project / "docs" / "nb.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    failed = build(project, "zensical", "site")
    assert failed.returncode != 0 and "cannot show notebooks with their outputs" in failed.stderr
    assert "docs/nb.ipynb would be published as a raw .ipynb download" in failed.stderr
    (project / "mkdocs.yml").write_text(
        (project / "mkdocs.yml").read_text().replace("llm_exec: {", "llm_exec: {notebooks_elsewhere: note, ")
    )
    noted = build(project, "zensical", "site")
    assert noted.returncode == 0, noted.stderr[-2000:]
    assert (
        "a raw notebook: this renderer cannot show it with its outputs" in (project / "site" / "index.html").read_text()
    )


def test_mkdocs_without_the_hook_refuses_to_present_raw_fences(tmp_path, tiny_models):
    project = small_site(tmp_path / "p", tiny_models)
    done = build(project, "mkdocs", "site")
    assert done.returncode != 0
    assert "an executable block, and nothing ran it" in done.stderr and "hooks/llm_exec.py" in done.stderr
    with_hook = small_site(tmp_path / "q", tiny_models, hook=True)
    from llmexec.adapters.cli import main as llmexec  # `python -m llmexec lock`, in this process: on the tests'

    assert llmexec(["lock", "-f", str(with_hook / "mkdocs.yml")]) == 0  # shared worker, no new torch import
    assert build(with_hook, "mkdocs", "site").returncode == 0
    assert build(with_hook, "zensical", "site-z").returncode == 0
    assert outputs(with_hook / "site") == outputs(with_hook / "site-z")
