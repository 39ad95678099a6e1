"""Execution modes and the committed lockfile: auto, locked, refresh, preview, verify; pruning and corruption."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mkdocs.exceptions import Abort

from conftest import calls
from llmexec.core.settings import load_settings
from llmexec.errors import ConfigError

PAGE = """
# Modes

```python exec
x = 1
```

```generate model=both max_new_tokens=5
Say hi
```
"""


def snapshot(folder: Path) -> dict[str, bytes]:
    return (
        {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        if folder.exists()
        else {}
    )


def lock_entries(site) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((site.root / "llm-exec.lock").glob("*.json"))]


def test_auto_records_a_lockfile_entry_per_result_with_provenance(bare_site, fake):
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    entries = lock_entries(bare_site)
    assert sorted((e["kind"], e["role"]) for e in entries) == [
        ("code", ""),
        ("generate", "base"),
        ("generate", "instruct"),
    ]
    gen = next(e for e in entries if e["role"] == "base")
    assert gen["page"] == "docs/index.md" and gen["source"] == "Say hi"
    assert gen["models"]["base"]["artifact"] == "fake-base" and gen["models"]["base"]["identity"].startswith(
        "dir-sha256:"
    )
    assert gen["settings"] == {"decoding": "greedy, fp32", "max_new_tokens": 5, "system": "", "template": "auto"}
    assert "seconds" in gen["outcome"] and "line" not in gen  # no line numbers: prose edits must not touch it
    text = (bare_site.root / "llm-exec.lock" / f"{gen['key']}.json").read_text()
    assert text == json.dumps(gen, sort_keys=True, ensure_ascii=False, indent=1) + "\n"  # stable, diff-friendly


def test_the_lockfile_alone_rebuilds_the_site_and_prose_edits_leave_it_untouched(bare_site, fake):
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    before = snapshot(bare_site.root / "llm-exec.lock")
    shutil.rmtree(bare_site.root / ".cache")
    bare_site.write("docs/index.md", "Intro paragraph added.\n" + PAGE)
    bare_site.build()
    assert calls(fake) == 2 and snapshot(bare_site.root / "llm-exec.lock") == before


def test_a_block_after_a_snippets_include_is_named_by_its_line_in_the_source_file(bare_site, fake, caplog):
    """Under MkDocs the page's source is planned (as `python -m llmexec lock` plans it), before pymdownx.snippets
    expands its includes: a block's page:line is a line of the page's file, and a fence inside an included file is
    shown as a listing, never executed (the command line would not see it)."""
    bare_site.llm_exec["mode"] = "locked"
    snippets = {"pymdownx.snippets": {"base_path": [str(bare_site.root)], "check_paths": True}}
    bare_site.yaml.append(f"markdown_extensions: [{json.dumps(snippets)}, pymdownx.superfences]")  # the later key wins
    bare_site.write("included.md", "one\n\n```python exec\nprint('included')\n```\n\nsix\n")
    bare_site.write("docs/index.md", '# Page\n\n--8<-- "included.md"\n\n```python exec\nx = 1\n```\n')
    with pytest.raises(Abort):
        bare_site.build()
    assert "docs/index.md:5: no lockfile entry matches this block" in caplog.text
    assert caplog.text.count("no lockfile entry") == 1 and "docs/index.md:12" not in caplog.text


def test_locked_mode_fails_on_a_missing_entry_naming_the_block_and_the_command(bare_site, fake, caplog):
    bare_site.llm_exec["mode"] = "locked"
    bare_site.write("docs/index.md", PAGE)
    with pytest.raises(Abort):
        bare_site.build()
    assert fake == []  # nothing executed, no worker
    assert "docs/index.md:3: no lockfile entry matches this block, and locked mode never executes" in caplog.text
    assert "--> update the lockfile: make lock" in caplog.text
    assert not (bare_site.root / "llm-exec.lock").exists()


def test_environment_variable_overrides_the_configured_mode(bare_site, fake, monkeypatch, caplog):
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    bare_site.write("docs/index.md", PAGE.replace("x = 1", "x = 2"))
    monkeypatch.setenv("LLM_EXEC_MODE", "locked")
    with pytest.raises(Abort):
        bare_site.build()
    monkeypatch.setenv("LLM_EXEC_MODE", "sometimes")
    with pytest.raises(Abort):
        bare_site.build()
    assert "$LLM_EXEC_MODE='sometimes' is not an execution mode" in caplog.text


def test_refresh_executes_everything_and_keeps_identical_entries_byte_for_byte(bare_site, fake):
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    before = snapshot(bare_site.root / "llm-exec.lock")
    bare_site.llm_exec["mode"] = "refresh"
    bare_site.build()
    assert calls(fake) == 4
    assert snapshot(bare_site.root / "llm-exec.lock") == before


def test_preview_marks_changed_blocks_writes_nothing_and_reports(bare_site, fake, monkeypatch, tmp_path):
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    lock, cache = (
        snapshot(bare_site.root / "llm-exec.lock"),
        snapshot(bare_site.root / ".cache" / "llm-exec" / "results"),
    )
    executed = calls(fake)
    monkeypatch.setenv("LLM_EXEC_MODE", "preview")
    monkeypatch.setenv("LLM_EXEC_REPORT", str(tmp_path / "report.md"))
    bare_site.write("docs/index.md", PAGE.replace("Say hi", "Say <img src=x onerror=alert(1)>"))
    bare_site.build()  # strict, and it still succeeds
    html = bare_site.html()
    assert html.count("Not executed in this preview") == 2  # both models' columns
    assert "ran: x = 1" in html  # the unchanged block still comes from the lockfile
    assert calls(fake) == executed
    assert snapshot(bare_site.root / "llm-exec.lock") == lock
    assert snapshot(bare_site.root / ".cache" / "llm-exec" / "results") == cache
    report = (tmp_path / "report.md").read_text()
    assert "2 block(s) changed inputs and were not executed" in report
    assert "`docs/index.md:7` · generate block, base model" in report
    assert "Previous input (lockfile)" in report and "Say hi" in report
    assert "<img src=x onerror=alert(1)>" not in html


def test_unused_entries_are_pruned_only_after_a_complete_successful_build(bare_site, fake):
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    bare_site.write("docs/index.md", PAGE.replace("Say hi", "Say bye") + "\n```python exec\nraise SystemExit\n```\n")
    with pytest.raises(Abort):
        bare_site.build()
    assert len(lock_entries(bare_site)) == 5  # the failed build pruned nothing
    bare_site.write("docs/index.md", PAGE.replace("Say hi", "Say bye"))
    bare_site.build()
    assert sorted(e["source"] for e in lock_entries(bare_site)) == ["Say bye", "Say bye", "x = 1"]


def test_a_corrupt_lockfile_entry_is_re_executed_in_auto_and_a_clear_error_in_locked(bare_site, fake, caplog):
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    entry = next((bare_site.root / "llm-exec.lock").glob("*.json"))
    entry.write_text(entry.read_text()[:40])  # truncated
    shutil.rmtree(bare_site.root / ".cache")
    bare_site.llm_exec["mode"] = "locked"
    with pytest.raises(Abort):
        bare_site.build()
    assert f"{entry} is unusable (not valid JSON" in caplog.text
    assert "no lockfile entry matches this block" in caplog.text
    bare_site.llm_exec["mode"] = "auto"
    bare_site.build()
    assert calls(fake) == 3 and json.loads(entry.read_text())["outcome"]["status"] == "ok"


def test_verify_reports_drift_with_the_first_divergence(bare_site, fake, monkeypatch, tmp_path, caplog):
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    monkeypatch.setenv("LLM_EXEC_MODE", "verify")
    monkeypatch.setenv("LLM_EXEC_REPORT", str(tmp_path / "drift.md"))
    bare_site.build()
    assert "Every executed block matches the committed lockfile" in (tmp_path / "drift.md").read_text()
    lock = bare_site.root / "llm-exec.lock"
    tampered = next(p for p in lock.glob("*.json") if json.loads(p.read_text())["kind"] == "code")
    data = json.loads(tampered.read_text())
    data["outcome"]["output"] = "ran: x = 7\n"
    tampered.write_text(json.dumps(data))
    before = snapshot(lock)
    with pytest.raises(Abort):
        bare_site.build()
    report = (tmp_path / "drift.md").read_text()
    assert "1 block(s) produced a different output than the lockfile" in report
    assert "`docs/index.md:3` · code block" in report
    assert "First difference at line 1, column 10 of output (text is compared exactly)" in report
    assert "- ran: x = 7\n+ ran: x = 1" in report
    assert snapshot(lock) == before  # verify never writes the lockfile
    assert "differ from the lockfile" in caplog.text


def test_a_lockfile_inside_a_watched_folder_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="which `mkdocs serve` watches"):
        load_settings({"llm_exec": {"lockfile": "docs/llm-exec.lock"}}, tmp_path, (tmp_path / "docs",))
