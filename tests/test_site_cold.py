"""The whole site built from nothing with the real models (`make test-site`, which CI runs after `make test`)."""

from __future__ import annotations

import re

import pytest

from conftest import _build_project, _copy_project

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
