"""Real builds with the real worker process and tiny real models saved by the tests."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from mkdocs.exceptions import Abort

BLOCK_TORCH = """
import sys
import time
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'transformers'):
            raise ImportError(f'{name} is blocked in this test')
sys.meta_path.insert(0, _NoTorch())
"""


def test_blocks_share_state_within_a_page_and_never_across_pages(site):
    site.write(
        "docs/index.md",
        """
        # One

        ```python exec
        counter = 41
        import json
        json.leaked = "yes"
        ```

        ```python exec
        counter += 1
        print("counter", counter)
        ```
        """,
    )
    site.write(
        "docs/two.md",
        """
        # Two

        ```python exec
        import json
        print("counter" in globals(), getattr(json, "leaked", "no"))
        ```
        """,
    )
    site.build()
    assert "counter 42" in site.html()
    assert "False no" in site.html("two/index.html")


def test_models_generate_and_the_page_names_them(site):
    site.write(
        "docs/index.md",
        """
        # Gen

        ```generate max_new_tokens=6
        hello world
        ```

        ```python exec
        g = instruct.generate("good morning", max_new_tokens=4)
        print(g.model, g.finish_reason, g.new_tokens)
        print(base.format_prompt("raw text"))
        ```
        """,
    )
    site.build()
    html = site.html()
    assert "tiny-base (test model)" in html and "tiny-instruct (test model)" in html
    # the instruct model received its chat template (decoded from the ids it got); the base model raw text
    assert "<code>&lt;|im_start|&gt; user hello world &lt;|im_end|&gt; &lt;|im_start|&gt; assistant</code>" in html
    assert '<pre class="llmx-input"><code>hello world</code></pre>' in html
    assert re.search(r"instruct (length|eos) \d", html)
    assert "ran with base = tiny-base (test model); instruct = tiny-instruct (test model)" in html


def test_outputs_are_byte_identical_across_cold_builds(site, caplog):
    """Two builds from nothing (no cache, no lockfile, no site): both execute everything, and agree byte for byte.
    The first runs on the session's shared worker (which has run other tests' builds), the second on a worker
    started for it: the outputs depend on neither the worker's history nor its start."""
    import logging

    from llmexec.resolve.runner import WorkerRunner, use_runner

    caplog.set_level(logging.INFO, logger="mkdocs")
    site.write(
        "docs/index.md",
        "# G\n\n```generate max_new_tokens=8\nthe cat sat on\n```\n\n"
        "```python exec\nprint(base.generate('hello world', max_new_tokens=6).text)\n```\n",
    )
    pages = []
    for fresh in (False, True):
        for built in (".cache", "llm-exec.lock", "site"):
            shutil.rmtree(site.root / built, ignore_errors=True)
        caplog.clear()
        if fresh:
            with use_runner(WorkerRunner):
                site.build()
            assert "starting the execution worker" in caplog.text
        else:
            site.build()
        summaries = [r.getMessage() for r in caplog.records if "blocks executed" in r.getMessage()]
        assert len(summaries) == 1 and summaries[0].startswith("llm_exec: 3 blocks executed, 0 from cache, 0 failed")
        pages.append(site.html())
    assert pages[0] == pages[1]


def test_tracebacks_point_at_the_page_line(site, caplog):
    site.write("docs/index.md", "# T\n\nText.\n\n```python exec\nx = 1\n\n1 / 0\n```\n")
    with pytest.raises(Abort):
        site.build()
    log = "\n".join(r.getMessage() for r in caplog.records)
    assert "docs/index.md:5: code block raised an exception" in log
    assert 'File "docs/index.md", line 8, in <module>' in log
    assert "ZeroDivisionError: division by zero" in log
    assert "worker.py" not in log


def test_a_hanging_block_is_stopped_and_the_build_goes_on(site, caplog):
    site.llm_exec["timeout"] = 2
    site.write("docs/index.md", "# H\n\n```python exec\nimport time\nwhile True:\n    time.sleep(1)\n```\n")
    site.write("docs/after.md", "# A\n\n```python exec\nprint('still running')\n```\n")
    with pytest.raises(Abort):
        site.build()
    log = "\n".join(r.getMessage() for r in caplog.records)
    assert "docs/index.md:3: code block ran past its time limit" in log and "time limit of 2 s" in log
    assert "still running" in (site.root / "site" / "after" / "index.html").read_text()


def test_a_block_that_kills_its_process_is_contained(site, caplog):
    site.write("docs/index.md", "# K\n\n```python exec\nimport os\nprint('bye', flush=True)\nos._exit(3)\n```\n")
    site.write("docs/after.md", "# A\n\n```python exec timeout=30\nprint('next page fine')\n```\n")
    with pytest.raises(Abort):
        site.build()
    log = "\n".join(r.getMessage() for r in caplog.records)
    assert "docs/index.md:3: code block crashed" in log and "exited with code 3" in log
    assert "next page fine" in (site.root / "site" / "after" / "index.html").read_text()


def test_cached_rebuild_executes_nothing_and_never_imports_torch(site, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="mkdocs")
    site.write("docs/index.md", "# C\n\n```python exec\nprint(base.artifact)\n```\n\n```generate\nhello\n```\n")
    site.build()  # cold, in process on the tests' shared worker; the warm build below is a fresh interpreter
    assert "llm_exec: 3 blocks executed, 0 from cache, 0 failed" in caplog.text
    warm = site.build_cli(prelude=BLOCK_TORCH)
    assert warm.returncode == 0, warm.stderr
    assert "0 blocks executed, 3 from cache, 0 failed" in warm.stderr
    assert "starting the execution worker" not in warm.stderr
    assert "tiny-base (test model)" in site.html()


def test_a_missing_model_is_one_clear_error(site, tmp_path):
    revision = "0123456789abcdef0123456789abcdef01234567"
    site.models["base"] = {"hub": "HuggingFaceTB/SmolLM2-135M", "revision": revision}
    site.write("docs/index.md", "# M\n\n```generate model=base\nhello\n```\n")
    result = site.build_cli(env={"HF_HUB_CACHE": str(tmp_path / "empty-hf-cache")})
    assert result.returncode != 0
    assert "docs/index.md:3: generate block failed on the base model" in result.stderr
    assert "HuggingFaceTB/SmolLM2-135M @ " + revision in result.stderr
    assert str(tmp_path / "empty-hf-cache") in result.stderr  # where it looked
    assert f"hf download HuggingFaceTB/SmolLM2-135M --revision {revision}" in result.stderr  # how to get it
    assert "Traceback" not in result.stderr


def test_a_fresh_checkout_builds_from_the_lockfile_without_torch_or_the_cache(site):
    site.write(
        "docs/index.md",
        "# L\n\n```python exec\nprint('locked', 6 * 7)\n```\n\n```generate max_new_tokens=4\nhello\n```\n",
    )
    site.build()  # in process, on the tests' shared worker: records the lockfile
    shutil.rmtree(site.root / ".cache")  # a new clone: only the committed lockfile
    locked = site.build_cli(env={"LLM_EXEC_MODE": "locked"}, prelude=BLOCK_TORCH)
    assert locked.returncode == 0, locked.stderr
    assert "0 blocks executed, 3 from cache, 0 failed" in locked.stderr
    assert "locked 42" in site.html()


def test_hostile_output_from_a_snippet_stays_text(site):
    site.write(
        "docs/index.md",
        """
        # X

        ```python exec
        print("<script>document.title='pwned'</script>")
        print('<img src=x onerror="alert(1)">')
        ```
        """,
    )
    site.build()
    html = site.html()
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "<img src=x" not in html and "<script>document" not in html


def test_each_output_names_only_the_models_its_block_used(site):
    site.write(
        "docs/index.md", "# U\n\n```python exec\nprint(base.role)\n```\n\n```python exec\nprint('no model here')\n```\n"
    )
    site.build()
    captions = re.findall(r'<div class="llmx-caption">(.*?)</div>', site.html())
    assert captions == ["Output · ran with base = tiny-base (test model)", "Output"]


def test_editing_a_block_re_executes_from_that_block_on_with_the_state_restored(site, tmp_path):
    runs = tmp_path / "runs.txt"
    page = f"""
        # Chain

        ```python exec
        open({str(runs)!r}, "a").write("1")
        def double(v):
            return 2 * v
        x = 20
        ```

        ```python exec
        open({str(runs)!r}, "a").write("2")
        x += 1
        ```

        ```python exec
        open({str(runs)!r}, "a").write("3")
        print("result", double(x))
        ```
        """
    site.write("docs/index.md", page)
    site.build()
    assert runs.read_text() == "123" and "result 42" in site.html()
    site.write("docs/index.md", page.replace('print("result", double(x))', 'print("edited", double(x) + 1)'))
    site.build()
    assert runs.read_text() == "1233"  # only the edited block ran again
    assert "edited 43" in site.html()  # with x and double() restored from the checkpoint
    for state in (site.root / ".cache" / "llm-exec" / "states").glob("*.pkl"):
        state.write_bytes(b"corrupt")
    site.write("docs/index.md", page.replace('print("result", double(x))', 'print("again", double(x))'))
    site.build()
    assert runs.read_text() == "1233123"  # an unreadable checkpoint costs a replay, never a wrong result
    assert "again 42" in site.html()


@pytest.mark.fresh_worker
def test_serve_rebuilds_keep_the_models_warm_and_re_execute_only_the_edit(site, caplog):
    """The `mkdocs serve` code path: one process, config reloaded per rebuild, on_shutdown only at the end."""
    import logging

    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    caplog.set_level(logging.INFO, logger="mkdocs")
    page = "# S\n\n```python exec\nprint(base.generate('hello', max_new_tokens=2).new_tokens)\n```\n\n```generate\nthe cat\n```\n"
    site.write("docs/index.md", page)
    config = None
    for text in (page, page.replace("the cat", "the dog")):
        site.write("docs/index.md", text)
        config = load_config(str(site.config()), site_dir=str(site.root / "site"))
        if text is page:
            config.plugins.on_startup(command="serve", dirty=False)
        build(config)
    config.plugins.on_shutdown()
    assert caplog.text.count("loading base model") == 1 and caplog.text.count("loading instruct model") == 1
    assert caplog.text.count("starting the execution worker") == 1
    summaries = [r.getMessage() for r in caplog.records if "blocks executed" in r.getMessage()]
    assert summaries[0].startswith("llm_exec: 3 blocks executed, 0 from cache")
    assert summaries[1].startswith("llm_exec: 2 blocks executed, 1 from cache")  # only the edited prompt ran
    # the worker's start (importing torch and transformers, seconds) counts as loading, not as the first call's work;
    # the rebuild's warm worker loads nothing
    loading = [float(re.search(r"loading \(the worker and models\) ([\d.]+) s", s)[1]) for s in summaries]
    loads = sum(float(x) for x in re.findall(r"loaded \w+ model in ([\d.]+) s", caplog.text))
    assert loading[0] >= loads + 0.5 and loading[1] == 0.0, (loading, loads)


def test_two_builds_at_once_share_the_cache_and_lockfile_safely(site):
    pages = {
        f"docs/p{i}.md": f"# P{i}\n\n```python exec\nprint({i} * 3)\n```\n\n```generate model=base\nhello {i}\n```\n"
        for i in range(3)
    }
    for path, text in pages.items():
        site.write(path, text)
    config = site.config()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mkdocs",
                "build",
                "--strict",
                "-f",
                str(config),
                "-d",
                str(site.root / f"site-{n}"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        )
        for n in range(2)
    ]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    entries = list((site.root / "llm-exec.lock").glob("*.json")) + list((site.root / ".cache").rglob("results/*.json"))
    assert len(entries) == 12 and all(json.loads(e.read_text())["outcome"]["status"] == "ok" for e in entries)
    assert not list(site.root.rglob("*.tmp"))
    locked = site.build_cli(env={"LLM_EXEC_MODE": "locked"})
    assert locked.returncode == 0 and "0 blocks executed, 6 from cache" in locked.stderr


# A snippet that SIGKILLs the execution worker itself: the topmost ancestor of this process that runs llmexec.worker.supervise
# (the block may run in the worker or in a child forked from it; /proc is read so this does not depend on which).
KILL_WORKER = """
import os, signal
def parent(pid):
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
worker = os.getpid()
while b"llmexec.worker" in open(f"/proc/{parent(worker)}/cmdline", "rb").read():
    worker = parent(worker)
print("killing the worker", worker, flush=True)
os.kill(worker, signal.SIGKILL)
"""


def test_a_block_that_kills_the_worker_fails_cleanly_and_the_next_build_starts_a_new_one(site):
    site.write("docs/index.md", f"# W\n\n```python exec\n{KILL_WORKER.strip()}\n```\n")
    site.write("docs/after.md", "# A\n\n```python exec\nprint('next page fine')\n```\n")
    died = site.build_cli()
    assert died.returncode == 1, died.stderr
    report = died.stderr[died.stderr.index("ERROR") :]
    assert report.startswith("ERROR   -  llm_exec: docs/index.md:3: code block crashed\n")
    assert "the execution worker was killed by SIGKILL while running this block" in report, report
    assert "Traceback" not in died.stderr
    # the build went on: the next page ran in a new worker
    assert died.stderr.count("starting the execution worker") == 2
    assert "next page fine" in site.html("after/index.html")
    assert "This block crashed (docs/index.md:3)" in site.html()

    site.write("docs/index.md", "# W\n\n```python exec\nprint('worker is back')\n```\n")
    again = site.build_cli()
    assert again.returncode == 0, again.stderr
    assert "starting the execution worker" in again.stderr
    assert "1 blocks executed, 1 from cache, 0 failed" in again.stderr
    assert "worker is back" in site.html()


def test_a_worker_death_is_blamed_on_the_block_that_was_running(site):
    # the pause lets the worker pass on the first outcome before it dies (what it had passed on is what is kept)
    site.write(
        "docs/index.md",
        f"# W\n\n```python exec\nprint('before the kill')\n```\n\n```python exec\n"
        f"import time\ntime.sleep(1)\n{KILL_WORKER.strip()}\n```\n",
    )
    died = site.build_cli()
    assert died.returncode == 1
    assert "docs/index.md:7: code block crashed" in died.stderr and "docs/index.md:3" not in died.stderr
    assert "before the kill" in site.html()


def test_a_block_that_kills_the_worker_and_hangs_does_not_hold_the_build(site):
    """Its process dies with the worker (and no longer holds the protocol pipe): the build reports the crash
    instead of waiting 300 s for the orphan (it would run into the test's 600 s subprocess timeout)."""
    site.llm_exec["timeout"] = 2
    site.write("docs/index.md", f"# W\n\n```python exec\n{KILL_WORKER.strip()}\nimport time\ntime.sleep(300)\n```\n")
    died = site.build_cli()
    assert died.returncode == 1
    assert "docs/index.md:3: code block crashed" in died.stderr
    assert "the execution worker was killed by SIGKILL while running this block" in died.stderr


def test_snippets_run_in_the_folder_of_mkdocs_yml(site, tmp_path):
    """Two projects in a row on one worker (as the tests share it): each block reads its own project's files
    and imports its own modules."""
    page = (
        "# C\n\n```python exec\nimport helper\n"
        "print(sum(map(int, open('data/numbers.txt').read().split())), helper.NAME)\n```\n"
    )
    outputs = []
    for folder, numbers in (("one", "4 5 6"), ("two", "1 2")):
        site.root = tmp_path / folder
        site.write("data/numbers.txt", numbers + "\n")
        site.write("helper.py", f"NAME = {folder!r}\n")
        site.write("docs/index.md", page)
        site.build()
        outputs.append(site.html())
    assert "<code>15 one\n</code>" in outputs[0] and "<code>3 two\n</code>" in outputs[1]
