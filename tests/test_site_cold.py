"""The whole site built from nothing with the real models (`make test-site`, which CI runs after `make test`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, _build_project, _copy_project
from llmexec.resolve.tolerance import compare

pytestmark = [pytest.mark.real_models, pytest.mark.site_cold]


def test_every_page_executes_from_nothing_and_every_claim_holds(tmp_path):
    """No lockfile, no result cache: every block of every page runs with the real models (the tuned one trained
    unless the model cache has it), the strict build passes and every checked sentence is true of what they did."""
    project = _copy_project(tmp_path / "project", lockfile=False)
    built = _build_project(project)
    summary = re.search(
        r"llm_exec: (\d+) blocks executed, (\d+) from cache, (\d+) failed; (\d+) claims checked, "
        r"(\d+) false",
        built.stderr,
    )
    assert summary, built.stderr[-3000:]
    executed, cached, failed, claims, false = map(int, summary.groups())
    assert executed >= 70 and cached == 0 and failed == 0 and claims >= 120 and false == 0, summary.group(0)
    assert len(list((project / "llm-exec.lock").glob("*.json"))) >= 70
    # The committed lockfile is what this build made: the same keys, and every outcome the same within verify's
    # tolerance (texts exact). A change to the engine that moves an output, or a key, fails here on every CI run.
    assert drift(ROOT / "llm-exec.lock", project / "llm-exec.lock") == ([], [], [])


def drift(committed: Path, made: Path) -> tuple[list[str], list[str], list[str]]:
    """Entries only in the committed lockfile, only in the new one, and those whose outcomes differ (with where)."""
    old = {p.name: p for p in committed.glob("*.json")}
    new = {p.name: p for p in made.glob("*.json")}
    differing = []
    for name in sorted(old.keys() & new.keys()):
        before: dict[str, Any] = json.loads(old[name].read_text(encoding="utf-8"))
        found = compare(before, json.loads(new[name].read_text(encoding="utf-8")))
        if found is not None:
            differing.append(f"{before.get('where', name)}: {found.field}: {found.before!r} -> {found.after!r}")
    return sorted(old.keys() - new.keys()), sorted(new.keys() - old.keys()), differing


def test_the_drift_check_sees_a_changed_output_and_a_missing_entry(tmp_path):
    """The comparison above, on a copy of three committed entries: one answer changed, one entry removed."""
    committed, made = tmp_path / "committed", tmp_path / "made"
    committed.mkdir()
    made.mkdir()
    names = sorted(p.name for p in (ROOT / "llm-exec.lock").glob("*.json"))[:3]
    for name in names:
        for folder in (committed, made):
            (folder / name).write_text((ROOT / "llm-exec.lock" / name).read_text(encoding="utf-8"), encoding="utf-8")
    assert drift(committed, made) == ([], [], [])
    entry = json.loads((made / names[0]).read_text(encoding="utf-8"))
    outcome = entry["outcome"]
    field = "text" if "text" in outcome else "output"
    outcome[field] = (outcome.get(field) or "") + " (changed)"
    (made / names[0]).write_text(json.dumps(entry), encoding="utf-8")
    (made / names[1]).unlink()
    missing, extra, differing = drift(committed, made)
    assert (missing, extra, len(differing)) == ([names[1]], [], 1) and "(changed)" in differing[0]
