"""`mkdocs serve` rebuilds in one process: only what an edit changed runs again, and an edit is never shown stale."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import llmexec.adapters.mkdocs as adapter
from conftest import outputs


@contextmanager
def serving(site) -> Iterator:
    """Builds the way `mkdocs serve` does: the hook module (and its engine) kept between builds, shut down once."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    config = None

    def rebuild() -> None:
        nonlocal config
        config = load_config(str(site.config()), site_dir=str(site.root / "site"))
        build(config)

    try:
        yield rebuild
    finally:
        if config is not None:
            config.plugins.on_shutdown()


def test_an_edit_under_serve_runs_only_its_block_and_reuses_every_other_page(bare_site, fake):
    bare_site.write("snippets/count.py", "print('one')\n")
    bare_site.write(
        "docs/index.md",
        """
        # Home

        ```generate model=instruct
        Name a river.
        ```
        """,
    )
    bare_site.write(
        "docs/code.md",
        """
        # Code

        ```python exec file="snippets/count.py"
        ```

        ```python exec
        print("inline")
        ```
        """,
    )
    bare_site.write(
        "docs/other.md",
        """
        # Other

        ```generate model=instruct
        Name a mountain.
        ```
        """,
    )
    with serving(bare_site) as rebuild:
        rebuild()
        runner = fake[0]
        assert (len(runner.generate_calls), len(runner.code_calls)) == (1, 1)
        other = bare_site.html("other/index.html")

        bare_site.write("docs/index.md", bare_site.root.joinpath("docs/index.md").read_text().replace("river", "lake"))
        rebuild()
        assert fake == [runner]  # one engine, one runner (its models stay loaded) across rebuilds
        assert [[r.request.prompt for r in call] for call in runner.generate_calls[1:]] == [["Name a lake."]]
        assert len(runner.code_calls) == 1  # nothing else executed
        assert adapter._engine is not None and adapter._engine.planned == 1  # the other pages' plans were reused
        assert adapter._engine.rendered == 1  # and their presented Markdown
        assert adapter._engine.resolver.recorder.stats.loading == 0  # the models stayed loaded: none counted again
        assert "[instruct] Name a lake." in bare_site.html() and "Name a river" not in bare_site.html()
        assert bare_site.html("other/index.html") == other

        bare_site.write("snippets/count.py", "print('two')\n")  # the page's text is unchanged: only its snippet
        rebuild()
        assert [[b.code for b in call] for call in runner.code_calls[1:]] == [["print('two')", 'print("inline")']]
        assert len(runner.generate_calls) == 2
        assert outputs(bare_site.html("code/index.html"))[:1] == ["ran: print('two')\n"]  # never the stale output
        assert (adapter._engine.planned, adapter._engine.rendered) == (1, 1)

        entry = next(p for p in (bare_site.root / "llm-exec.lock").glob("*.json") if '"docs/other.md"' in p.read_text())
        locked = json.loads(entry.read_text())
        locked["outcome"]["text"] = "Mont Blanc, re-locked"  # e.g. `python -m llmexec lock` run in another terminal
        entry.write_text(json.dumps(locked))
        rebuild()
        assert "Mont Blanc, re-locked" in outputs(bare_site.html("other/index.html"))  # same page text, new outcome
        assert len(runner.generate_calls) == 2 and adapter._engine.planned == 0
