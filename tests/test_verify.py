"""Outputs proven to come from the models: `verify --since REF` re-executes exactly the changed lockfile entries."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from mkdocs.exceptions import Abort

from conftest import calls
from test_modes import PAGE  # the same page: a code block at line 3, a generate block at line 7


def git(site, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=site.root, check=True, capture_output=True, text=True).stdout


def committed_site(site) -> None:
    """The site built once (auto mode records the lockfile) and committed to a fresh git repository."""
    site.write("docs/index.md", PAGE)
    site.write(".gitignore", "/.cache/\n/site/\n")
    mode = os.environ.pop("LLM_EXEC_MODE", None)  # the first build records the lockfile (auto mode)
    try:
        site.build()
    finally:
        if mode is not None:
            os.environ["LLM_EXEC_MODE"] = mode
    git(site, "init", "-q", "-b", "main")
    git(site, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", "-A")
    git(site, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "site and lockfile")


def commit(site, message: str) -> None:
    git(site, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", "-A")
    git(site, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", message)


def entry(site, kind: str, role: str = ""):
    for path in sorted((site.root / "llm-exec.lock").glob("*.json")):
        data = json.loads(path.read_text())
        if data["kind"] == kind and data["role"] == role:
            return path, data
    raise AssertionError(f"no {kind} {role} entry")


def forge_text(site, role: str, text: str) -> None:
    path, data = entry(site, "generate", role)
    data["outcome"]["text"] = text
    path.write_text(json.dumps(data, sort_keys=True, ensure_ascii=False, indent=1) + "\n")


@pytest.fixture
def verify_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LLM_EXEC_MODE", "verify")
    monkeypatch.setenv("LLM_EXEC_REPORT", str(tmp_path / "report.md"))
    return tmp_path / "report.md"


def test_an_untouched_lockfile_passes_and_re_executes_nothing(bare_site, fake, verify_env, monkeypatch):
    committed_site(bare_site)
    before = calls(fake)
    monkeypatch.setenv("LLM_EXEC_SINCE", "HEAD")
    bare_site.build()
    assert calls(fake) == before  # no runner call: nothing re-executed
    assert "Every executed block matches" in verify_env.read_text()


def test_an_edited_output_with_its_key_intact_fails_naming_the_block(bare_site, fake, verify_env, monkeypatch, caplog):
    committed_site(bare_site)
    forge_text(bare_site, "instruct", "Bonjour, mon ami.")  # what a hand edit of the lockfile looks like
    commit(bare_site, "a nicer answer")
    monkeypatch.setenv("LLM_EXEC_SINCE", "HEAD~1")
    before = sum(calls([r]) for r in fake)
    with pytest.raises(Abort):
        bare_site.build()
    assert sum(calls([r]) for r in fake) == before + 1
    assert [r.model for r in fake[-1].generate_calls[-1]] == ["instruct"]  # exactly the changed entry, nothing else
    assert "docs/index.md:7: generate block, instruct model: the output differs from its lockfile entry" in caplog.text
    assert "first difference at line 1, column 1" in caplog.text and "'Bonjour, mon ami.'" in caplog.text
    report = verify_env.read_text()
    assert "| `docs/index.md:7` generate block, instruct model | `Bonjour, mon ami.…` |" in report
    assert "| **no** |" in report


def test_a_forged_entry_under_a_new_key_fails_too(bare_site, fake, verify_env, monkeypatch, caplog):
    """The forger also changes the prompt, so the forged output sits under a correct new key."""
    committed_site(bare_site)
    monkeypatch.delenv("LLM_EXEC_MODE")
    bare_site.write("docs/index.md", PAGE.replace("Say hi", "Say hello"))
    bare_site.build()  # auto: records the new prompt's entries
    _, data = entry(bare_site, "generate", "base")
    assert data["source"] == "Say hello"
    forge_text(bare_site, "base", "Hello! I am a well-behaved base model.")
    commit(bare_site, "new prompt")
    monkeypatch.setenv("LLM_EXEC_MODE", "verify")
    monkeypatch.setenv("LLM_EXEC_SINCE", "HEAD~1")
    with pytest.raises(Abort):
        bare_site.build()
    assert "docs/index.md:7: generate block, base model: the output differs" in caplog.text
    assert "'Hello! I am a well-behaved base model.'" in caplog.text


def test_since_outside_verify_or_an_unknown_ref_is_a_clear_error(bare_site, fake, monkeypatch, caplog):
    committed_site(bare_site)
    monkeypatch.setenv("LLM_EXEC_SINCE", "HEAD")
    with pytest.raises(Abort):
        bare_site.build()
    assert "only verify re-executes the entries changed since a git ref" in caplog.text
    monkeypatch.setenv("LLM_EXEC_MODE", "verify")
    monkeypatch.setenv("LLM_EXEC_SINCE", "no-such-ref")
    with pytest.raises(Abort):
        bare_site.build()
    assert "SINCE='no-such-ref': git cannot compare llm-exec.lock/ with it" in caplog.text


def test_preview_executes_blocks_without_an_entry_marks_them_and_stores_nothing(bare_site, fake, monkeypatch, tmp_path):
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    lock = sorted(p.read_bytes() for p in (bare_site.root / "llm-exec.lock").glob("*.json"))
    cache = sorted(p.name for p in (bare_site.root / ".cache" / "llm-exec" / "results").glob("*.json"))
    monkeypatch.setenv("LLM_EXEC_MODE", "preview")
    monkeypatch.setenv("LLM_EXEC_PREVIEW_EXECUTE", "1")
    monkeypatch.setenv("LLM_EXEC_REPORT", str(tmp_path / "report.md"))
    bare_site.write("docs/index.md", PAGE.replace("x = 1", "x = 2").replace("Say hi", "Say bye"))
    bare_site.build()
    html = bare_site.html()
    assert html.count("Executed for this preview only") == 3  # the code block and both model columns
    assert "ran: x = 2" in html and "Not executed in this preview" not in html
    code_requests = [req for r in fake for batch in r.code_calls for req in batch]
    assert code_requests[-1].code == "x = 2" and code_requests[-1].key == ""  # no checkpoint of untrusted state
    assert sorted(p.read_bytes() for p in (bare_site.root / "llm-exec.lock").glob("*.json")) == lock
    assert sorted(p.name for p in (bare_site.root / ".cache" / "llm-exec" / "results").glob("*.json")) == cache
    report = (tmp_path / "report.md").read_text()
    assert "3 block(s) have no lockfile entry and were executed for this preview only" in report


def run_verify(site, since: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("LLM_EXEC_MODE", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "llmexec",
            "verify",
            "--since",
            since,
            "-f",
            str(site.root / "mkdocs.yml"),
            "--report",
            str(site.root / "report.md"),
        ],
        cwd=site.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_command_line_on_real_models_names_the_block_and_what_differs_between_machines(site):
    """`python -m llmexec verify --since HEAD~1` (what `make verify SINCE=HEAD~1` runs), with the real worker."""
    committed_site(site)
    path, data = entry(site, "generate", "base")
    assert "avx" in data["machine"]["vector_extensions"] or data["machine"]["arch"] != "x86_64"
    # the threads its batch ran on: 1 of the 2 while the instruct model's lane ran beside it (worker/lanes.py)
    assert data["machine"]["torch_threads"] in (1, 2) and data["outcome"]["batch_size"] == 1
    assert "threads" not in data["outcome"]  # recorded as the machine's, not as an output
    untouched = run_verify(site, "HEAD")
    assert untouched.returncode == 0, untouched.stderr[-3000:]
    assert "starting the execution worker" not in untouched.stderr  # nothing re-executed, torch never imported
    data["outcome"]["text"] = "a forged answer"
    data["machine"]["vector_extensions"] = "sse4_2 avx avx2 fma avx512f"
    path.write_text(json.dumps(data, sort_keys=True, ensure_ascii=False, indent=1) + "\n")
    commit(site, "forged")
    forged = run_verify(site, "HEAD~1")
    assert forged.returncode == 1
    assert "docs/index.md:7: generate block, base model: the output differs from its lockfile entry" in forged.stderr
    assert "vector extensions: sse4_2 avx avx2 fma avx512f in the lockfile" in forged.stderr
    assert "FAILED" in forged.stderr and "llm-exec.lock" in forged.stderr
    assert json.loads(path.read_text())["outcome"]["text"] == "a forged answer"  # verify never writes the lockfile


def test_a_changed_noted_value_is_named_even_when_the_printed_output_is_the_same(bare_site, fake, verify_env, caplog):
    bare_site.write("docs/index.md", PAGE)
    mode = os.environ.pop("LLM_EXEC_MODE")
    bare_site.build()
    os.environ["LLM_EXEC_MODE"] = mode
    path, data = entry(bare_site, "code")
    data["outcome"]["notes"] = {"p": 0.5}  # the fake runner notes nothing
    path.write_text(json.dumps(data, sort_keys=True, ensure_ascii=False, indent=1) + "\n")
    with pytest.raises(Abort):
        bare_site.build()
    assert "docs/index.md:3: code block: the output differs" in caplog.text
    assert "of notes (the names differ)" in caplog.text
    assert "lockfile: '{\"p\": 0.5}'" in caplog.text and "now:      '{}'" in caplog.text


def test_noted_values_compare_by_content_not_by_key_order():
    from llmexec.resolve.tolerance import same

    stored = {"output": "x", "notes": {"a": 1, "b": {"d": 2, "c": 3}}}  # lockfile entries are written with sorted keys
    fresh = {"output": "x", "notes": {"b": {"c": 3, "d": 2}, "a": 1}}  # a snippet notes in its own order
    assert same(stored, fresh)
    assert not same(stored, {"output": "x", "notes": {"a": 1}})
