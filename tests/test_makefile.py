"""The Makefile's two set-ups: `make site` installs only what building the site needs, the test targets add the rest."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import ROOT

TEST_ONLY = ("requirements-dev.txt", "requirements-renderers.txt")


def dry_run(target: str, tmp_path) -> str:
    """What `make <target>` would run on a fresh clone (no .venv yet), without running it."""
    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    done = subprocess.run(
        ["make", "-n", target, f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_site_installs_no_test_or_renderer_tools(tmp_path):
    site = dry_run("site", tmp_path)
    assert "-r requirements.txt" in site and "requirements-models.txt" in site and "mkdocs build --strict" in site
    assert not [name for name in TEST_ONLY if name in site]
    assert (
        "llmexec prepare" not in site
    )  # a build from the lockfile converts nothing; one that executes converts itself


@pytest.mark.parametrize("target", ["test", "test-models", "test-site", "zensical"])
def test_the_test_targets_install_the_site_set_up_and_the_test_tools(tmp_path, target):
    commands = dry_run(target, tmp_path)
    assert "-r requirements.txt" in commands
    assert all(f"-r {name}" in commands for name in TEST_ONLY)
