"""The engine, the resolver and the presenter on their own, with the fake runner: no MkDocs build, no Material."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import FakeRunner
from llmexec.core.settings import Settings, load_settings
from llmexec.engine import Engine
from llmexec.plan.page import plan_page
from llmexec.present import page as present
from llmexec.resolve.resolver import Resolver

PAGE = """# Page

```python exec
x = 20
```

```python exec
x += 1
```

```python exec
print(x * 2)
```

```generate model=base max_new_tokens=4
hello
```
"""


class Log:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.progress: list[str] = []


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for role in ("base", "instruct"):
        folder = tmp_path / f"fake-{role}"
        folder.mkdir()
        (folder / "weights.txt").write_text(f"fake {role} v1")
    return tmp_path


def settings(project: Path, mode: str = "auto", **env: str) -> Settings:
    models = {role: {"path": str(project / f"fake-{role}"), "label": f"fake-{role}"} for role in ("base", "instruct")}
    return load_settings(
        {"models": models, "cache_dir": ".cache/llm-exec"}, project, environ={"LLM_EXEC_MODE": mode, **env}
    )


def resolve(
    project: Path, markdown: str = PAGE, mode: str = "auto", runner: type[FakeRunner] = FakeRunner, **env: str
) -> tuple[Resolver, Log, list[FakeRunner], tuple]:
    s, log, started = settings(project, mode, **env), Log(), []

    def start() -> FakeRunner:
        started.append(runner(s, log.progress.append))
        return started[-1]

    resolver = Resolver(s, start, log.errors.append, log.progress.append)
    plan = plan_page(markdown, page="index.md", line_offset=0, project_dir=project, settings=s)
    return resolver, log, started, (plan, resolver.code(plan), resolver.generations(plan))


def entries(project: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((project / "llm-exec.lock").glob("*.json"))]


def test_the_resolver_records_what_the_runner_reports_then_serves_it_without_starting_one(project):
    resolver, log, started, (_, code, generated) = resolve(project)
    assert [o.output for o in code] == ["ran: x = 20\n", "ran: x += 1\n", "ran: print(x * 2)\n"]
    assert [o.status for o in generated.values()] == ["ok"]
    assert log.errors == [] and len(started) == 1
    recorded = entries(project)
    assert len(recorded) == 4
    assert all(e["versions"]["torch"] == "0.fake" and e["machine"]["arch"] == "fake64" for e in recorded)
    stats = resolver.recorder.stats
    assert (stats.executed, stats.cached, stats.loading) == (4, 0, FakeRunner.LOAD_SECONDS)  # one role loaded
    assert "loading (the worker and models) 1.5 s" in resolver.recorder.summary()
    again, _, started_again, (_, code_again, _) = resolve(project)
    assert started_again == [] and code_again == code and again.recorder.stats.cached == 4


def test_weights_a_runner_reports_are_recorded_with_the_entry(project):
    class Tuned(FakeRunner):
        weights = {"base": "ab" * 32}

    resolve(project, runner=Tuned)
    assert {e["models"]["base"].get("weights_sha256") for e in entries(project)} == {"ab" * 32}


class LaneRunner(FakeRunner):
    """Reports, like the worker's lanes, the torch threads each generation's batch ran on (its lane's share)."""

    def generate(self, requests):
        return [replace(o, threads=2) for o in super().generate(requests)]


def test_an_entry_records_the_threads_its_batch_ran_on_as_the_machines_not_as_an_output(project):
    resolve(project, runner=LaneRunner)
    (generated,) = [e for e in entries(project) if e["kind"] == "generate"]
    assert generated["machine"]["torch_threads"] == 2  # the runner's machine says 1: the batch's own count wins
    assert "threads" not in generated["outcome"]  # the stored outcome is unchanged: no lockfile entry rewritten
    assert {e["machine"]["torch_threads"] for e in entries(project) if e["kind"] == "code"} == {1}


def test_an_edited_block_resumes_from_the_checkpoint_before_it(project):
    class Resuming(FakeRunner):
        checkpoints = True

    resolve(project, runner=Resuming)
    resolver, _, started, (_, code, _) = resolve(project, PAGE.replace("print(x * 2)", "print(x * 3)"), runner=Resuming)
    (runner,) = started
    assert runner.resumes == [2]
    assert [o.output for o in code] == ["ran: x = 20\n", "ran: x += 1\n", "ran: print(x * 3)\n"]
    assert resolver.recorder.stats.cached == 3 and resolver.recorder.stats.executed == 1  # 2 code blocks, 1 answer


def test_without_a_checkpoint_the_page_is_replayed_from_its_first_block(project):
    resolve(project)  # the default fake keeps no checkpoints
    _, _, started, (_, code, _) = resolve(project, PAGE.replace("print(x * 2)", "print(x * 3)"))
    assert started[0].resumes == [0] and [len(c) for c in started[0].code_calls] == [3]
    assert code[2].output == "ran: print(x * 3)\n"


def test_locked_mode_reports_a_missing_entry_and_starts_nothing(project):
    resolver, log, started, (_, code, generated) = resolve(project, mode="locked")
    assert started == [] and {o.status for o in code} | {o.status for o in generated.values()} == {"unexecuted"}
    assert log.errors[0].startswith("index.md:3: no lockfile entry matches this block, and locked mode never executes")
    assert "--> update the lockfile: " in log.errors[0]
    assert resolver.recorder.stats.failed == 4


def test_a_preview_marks_instead_of_failing_and_may_execute_for_itself(project):
    resolver, log, started, (_, code, _) = resolve(project, mode="preview")
    assert log.errors == [] and started == [] and resolver.recorder.stats.unexecuted == 4
    assert code[0].status == "unexecuted" and code[0].error == ""  # the mode is why: the presenter says it
    resolver, log, started, (_, code, _) = resolve(project, mode="preview", LLM_EXEC_PREVIEW_EXECUTE="1")
    assert [o.status for o in code] == ["ok"] * 3 and entries(project) == []  # shown, never stored
    assert resolver.recorder.preview_only == {"index.md:3#", "index.md:7#", "index.md:11#", "index.md:15#base"}
    assert all(not r.key for r in started[0].code_calls[0])  # untrusted code: no checkpoint is asked for


def test_the_presenter_escapes_model_output_and_marks_a_preview(project):
    resolver, _, _, (plan, code, generated) = resolve(project, mode="preview", LLM_EXEC_PREVIEW_EXECUTE="1")
    s = settings(project, "preview", LLM_EXEC_PREVIEW_EXECUTE="1")
    context = present.Context(s.models, s.policy, frozenset(resolver.recorder.preview_only), True, {})
    text, checked = present.page(plan, code, generated, context, lambda indent, html: [indent + html])
    assert "&lt;script&gt;alert(&#x27;base&#x27;)&lt;/script&gt;" in text and "<script>" not in text
    assert "Executed for this preview only" in text and checked.count == 0


@pytest.mark.parametrize("mode", ["preview", "locked"])
def test_an_unexecuted_outcome_carries_no_location_and_the_presenter_writes_it_once(project, mode):
    """The mode is why a block was not executed: its outcome carries no text (nothing that names the block), and the
    page says why with the block's location, from the plan; a reason the runner gave (a tuned model a preview may
    not train) is shown as given."""
    _, _, _, (plan, code, generated) = resolve(project, mode=mode)
    assert [(o.status, o.error) for o in [*code, *generated.values()]] == [("unexecuted", "")] * 4
    s = settings(project, mode)
    context = present.Context(s.models, s.policy, frozenset(), True, {})
    text, _ = present.page(plan, code, generated, context, lambda indent, html: [indent + html])
    why = {
        "preview": "The inputs of this block (index.md:{}) changed, and this preview executes nothing",
        "locked": "index.md:{}: no lockfile entry matches this block, and locked mode never executes",
    }[mode]
    assert all(text.count(why.format(line)) == 1 for line in (3, 7, 11))  # each code block's own location, once
    assert "ndex.md:15: no lockfile entry" in text if mode == "locked" else why.format(15) in text
    declined = replace(code[0], error="the tuned model 'tuned' is not trained on this machine\n  --> make lock")
    text, _ = present.page(plan, [declined, *code[1:]], generated, context, lambda indent, html: [indent + html])
    assert "the tuned model &#x27;tuned&#x27; is not trained on this machine" in text.lower()
    assert text.count("ndex.md:3") == 0


def test_the_engine_plans_resolves_and_presents_a_page(project):
    errors: list[str] = []
    engine = Engine(settings(project), project, FakeRunner, errors.append, lambda _: None)
    engine.begin_build()
    text = engine.process_page(PAGE, page="index.md", place=lambda indent, html: [indent + html])
    assert "ran: print(x * 2)" in text and errors == []
    assert engine.end_build(dirty=False) == 0
    assert engine.summary().startswith("4 blocks executed, 0 from cache, 0 failed")
    engine.close()
