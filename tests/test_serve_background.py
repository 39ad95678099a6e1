"""`mkdocs serve`: an edited prompt is shown at once, its answers generated in the background, then shown on the
rebuild MkDocs runs when they are ready; `mkdocs build` still waits for them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from mkdocs.livereload import LiveReloadServer

import llmexec.adapters.mkdocs as adapter
from conftest import FakeRunner, outputs
from llmexec.core.protocol import GenerateOutcome, GenerateRequest
from llmexec.resolve.runner import use_runner

PAGE = """
# Home

```generate model=both max_new_tokens=8 id=q
Name a {thing}.
```

[The base model runs to its limit]{{check: q.base.finish_reason == "length"}}.
"""


class Gate:
    """Stands for the worker process: `kill()` ends the call in progress at once, as a killed worker's pipe does."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.killed = False

    def poll(self) -> None:
        return None  # running

    def kill(self) -> None:
        self.killed = True
        self.open.set()


class SlowRunner(FakeRunner):
    """A fake runner whose generations wait until the test opens the gate (a slow model); a prompt that says
    "fail" crashes."""

    gate = Gate()
    calls = 0  # generation calls of every instance

    def __init__(self, settings, progress) -> None:
        super().__init__(settings, progress)
        self.process = SlowRunner.gate
        self.asked: list[list[str]] = []  # prompts of each call, as it begins (generate_calls: as it ends)

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateOutcome]:
        SlowRunner.calls += 1
        self.asked.append([r.request.prompt for r in requests])
        if SlowRunner.calls > 1:  # the first build (cold, before `serve` watches) is not held
            assert SlowRunner.gate.open.wait(timeout=20), "the test never opened the gate"
        done = super().generate(requests)
        return [
            GenerateOutcome("crashed", error="the model fell over") if "fail" in r.request.prompt else o
            for r, o in zip(requests, done)
        ]


class Watching(LiveReloadServer):
    """MkDocs' own server, never started: it records what the hook asks it to watch."""

    def __init__(self, root: Path) -> None:
        super().__init__(builder=lambda: None, host="127.0.0.1", port=0, root=str(root))
        self.watched: list[Path] = []

    def watch(self, path: str, func: None = None, *, recursive: bool = True) -> None:
        self.watched.append(Path(path))
        super().watch(path, func, recursive=recursive)


@contextmanager
def serving(site) -> Iterator:
    """Builds as `mkdocs serve` runs them in one process: startup as `serve`, the first build, `on_serve` with
    MkDocs' server, then a rebuild per call; shut down once."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    SlowRunner.instances.clear()
    SlowRunner.gate, SlowRunner.calls = Gate(), 0
    config = load_config(str(site.config()), site_dir=str(site.root / "site"))
    config.plugins.on_startup(command="serve", dirty=False)
    server = Watching(site.root / "site")

    def rebuild() -> float:
        nonlocal config
        config = load_config(str(site.config()), site_dir=str(site.root / "site"))
        started = time.perf_counter()
        build(config)
        return time.perf_counter() - started

    with use_runner(SlowRunner):
        try:
            rebuild()
            config.plugins.on_serve(server, config=config, builder=rebuild)
            yield rebuild, server
        finally:
            SlowRunner.gate.open.set()
            config.plugins.on_shutdown()
            server.observer.stop()


def ready_file(server: Watching) -> Path:
    (folder,) = server.watched
    return folder / "answers-ready"


def wait_for(path: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not path.is_file():
        assert time.monotonic() < deadline, f"{path} was never written"
        time.sleep(0.02)


def test_an_edited_prompt_shows_at_once_and_its_answers_on_the_next_rebuild(bare_site):
    bare_site.write("docs/index.md", PAGE.format(thing="river"))
    with serving(bare_site) as (rebuild, server):
        runner = SlowRunner.instances[0]
        assert len(runner.generate_calls) == 1 and "<script>" in outputs(bare_site.html())[0]
        folder = ready_file(server).parent
        assert folder.is_dir() and folder.is_relative_to(bare_site.root / ".cache/llm-exec")  # not docs/: no loop

        bare_site.write("docs/index.md", PAGE.format(thing="<b>lake</b>"))
        rebuild()  # returns while the slow model has not answered: the gate is still closed
        page = bare_site.html()
        assert "Name a &lt;b&gt;lake&lt;/b&gt;." in page and "<b>lake</b>" not in page  # the edit, escaped
        assert page.count('class="llmx-result llmx-pending" role="status"') == 2
        assert "Generating on the base model… this page reloads when the answer is ready" in page
        assert "Generating on the instruct model…" in page
        assert "llmx-claim-unchecked" in page and "llmx-claim-false" not in page  # pending, never false
        assert "<script>" not in "".join(outputs(page)) and not ready_file(server).exists()

        bare_site.write("docs/other.md", "# Other\n")  # another save while the answers are generated
        rebuild()
        assert runner.asked[1:] == [["Name a <b>lake</b>."] * 2]  # the keys in flight were not sent again
        assert bare_site.html().count("llmx-pending") >= 2

        SlowRunner.gate.open.set()
        wait_for(ready_file(server))  # written in the folder MkDocs watches: it rebuilds
        rebuild()
        page = bare_site.html()
        assert "llmx-pending" not in page and "Name a &lt;b&gt;lake&lt;/b&gt;." in page
        assert outputs(page) == ["<script>alert('base')</script>", "<script>alert('instruct')</script>"]
        assert "llmx-claim-true" in page
        assert adapter._engine is not None and adapter._engine.resolver.recorder.stats.executed == 2
        entries = [p.read_text() for p in (bare_site.root / "llm-exec.lock").glob("*.json")]
        assert len([e for e in entries if "Name a <b>lake</b>." in e]) == 2  # recorded as a build records them
        assert len(runner.asked) == 2


def test_the_answers_of_a_rebuild_are_asked_for_when_it_has_written_its_pages(bare_site, monkeypatch):
    """The rebuild the user waits for renders on the whole machine; its generations start when it is done."""
    bare_site.write("docs/index.md", PAGE.format(thing="river"))
    with serving(bare_site) as (rebuild, _):
        runner, engine, asked_at_end = SlowRunner.instances[0], adapter._engine, []
        assert engine is not None
        ended = engine.end_build  # on_post_build: every page written

        def at_end(*, dirty: bool) -> int:
            time.sleep(0.3)  # time enough for a call sent during the build to have begun
            asked_at_end.append(len(runner.asked))
            return ended(dirty=dirty)

        monkeypatch.setattr(engine, "end_build", at_end)
        bare_site.write("docs/index.md", PAGE.format(thing="lake"))
        rebuild()
        assert asked_at_end == [1]  # the first build's call only
        wait_until_asked(runner, 2)  # then the rebuild's
        assert runner.asked[1] == ["Name a lake."] * 2


def test_a_rebuild_that_fails_still_asks_for_the_answers_it_queued(bare_site, monkeypatch):
    bare_site.write("docs/index.md", PAGE.format(thing="river"))
    with serving(bare_site) as (rebuild, _):
        runner, engine = SlowRunner.instances[0], adapter._engine
        assert engine is not None

        def broken(*args, **kwargs) -> str:
            raise RuntimeError("a theme that fails")

        monkeypatch.setattr(engine, "process_page", broken)  # after on_files queued the edited page's answers
        bare_site.write("docs/index.md", PAGE.format(thing="lake"))
        with pytest.raises(RuntimeError, match="a theme that fails"):
            rebuild()
        wait_until_asked(runner, 2)  # MkDocs' on_build_error let them go


def wait_until_asked(runner: SlowRunner, calls: int) -> None:
    deadline = time.monotonic() + 10
    while len(runner.asked) < calls:
        assert time.monotonic() < deadline, f"{calls} generation calls were never made: {runner.asked}"
        time.sleep(0.01)


def test_a_background_failure_reaches_the_log_and_the_page(bare_site, caplog):
    caplog.set_level(logging.INFO, logger="mkdocs")
    bare_site.write("docs/index.md", PAGE.format(thing="river"))
    with serving(bare_site) as (rebuild, server):
        bare_site.write("docs/index.md", PAGE.format(thing="river, or fail"))
        rebuild()
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        SlowRunner.gate.open.set()
        wait_for(ready_file(server))
        rebuild()
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 2 and all("docs/index.md:3: generate block failed on the" in e for e in errors)
        assert "the model fell over" in errors[0]
        assert bare_site.html().count("the model fell over") == 2 and "llmx-pending" not in bare_site.html()
        assert adapter._engine is not None and adapter._engine.resolver.recorder.stats.failed == 2


def test_shutdown_drops_the_generation_in_flight_and_stores_nothing_of_it(bare_site):
    bare_site.write("docs/index.md", PAGE.format(thing="river"))
    with serving(bare_site) as (rebuild, server):
        bare_site.write("docs/index.md", PAGE.format(thing="cloud"))
        rebuild()
        runner = SlowRunner.instances[0]
        deadline = time.monotonic() + 10
        while len(runner.asked) < 2:  # the background call has begun
            assert time.monotonic() < deadline
            time.sleep(0.01)
        started = time.perf_counter()
        adapter.on_shutdown()
        assert time.perf_counter() - started < 3 and SlowRunner.gate.killed
    time.sleep(0.2)  # the fake answers once killed: too late, dropped
    stored = "".join(
        p.read_text()
        for folder in ("llm-exec.lock", ".cache/llm-exec/results")
        for p in (bare_site.root / folder).glob("*.json")
    )
    assert "Name a river." in stored and "Name a cloud." not in stored
    assert not ready_file(server).exists()


def test_a_build_still_waits_for_its_answers(bare_site):
    """`mkdocs build` (and `serve --clean`, which MkDocs starts as a build): no server watches, nothing is deferred."""
    bare_site.write("docs/index.md", PAGE.format(thing="river"))
    SlowRunner.gate, SlowRunner.calls = Gate(), 0
    with use_runner(SlowRunner):
        bare_site.build()  # the first call is not held
        bare_site.write("docs/index.md", PAGE.format(thing="lake"))
        threading.Timer(0.5, SlowRunner.gate.open.set).start()
        started = time.perf_counter()
        bare_site.build()
        assert time.perf_counter() - started >= 0.5  # it waited for the slow model
    page = bare_site.html()
    assert "llmx-pending" not in page and "<script>alert('base')</script>" in outputs(page)
    assert "Name a lake." in page
