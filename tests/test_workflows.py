"""The GitHub workflows: valid (actionlint), and split so untrusted PR code never meets write permissions."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")


def load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


@pytest.fixture(scope="module")
def actionlint() -> str:
    assert ACTIONLINT, "actionlint is missing: make setup installs it (requirements-dev.txt)"
    return ACTIONLINT


def test_every_workflow_passes_actionlint(actionlint):
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["preview-deploy.yml", "preview.yml", "publish.yml"]
    result = subprocess.run([actionlint, "-no-color", *map(str, files)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_really_checks(actionlint, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.event.nope.title }}\n        uses: actions/checkout@v4\n")
    result = subprocess.run([actionlint, "-no-color", str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "bad.yml" in result.stdout


def test_publish_builds_locked_without_torch():
    publish = load("publish.yml")
    assert publish["on"]["push"]["branches"] == ["main"]
    build = steps({"jobs": {"build": publish["jobs"]["build"]}})
    installs = [s["run"].split("\n") for s in build if "pip install" in s.get("run", "")]
    assert installs == [["python -m pip install -r requirements-site.txt",  # the engine without its exec extra:
                         "python -m pip install --no-deps --no-build-isolation .", ""]]  # no torch
    assert any(s.get("env", {}).get("LLM_EXEC_MODE") == "locked" and "mkdocs build --strict" in s.get("run", "") for s in build)
    assert "torch" not in (ROOT / "requirements-site.txt").read_text().split("#")[0]


def test_publish_refuses_to_deploy_unless_the_changed_entries_reproduce():
    publish = load("publish.yml")
    jobs = publish["jobs"]
    assert jobs["build"]["needs"] == "verify" and jobs["deploy"]["needs"] == "build"
    assert "permissions" not in jobs["verify"] and publish["permissions"] == {"contents": "read"}
    verify = jobs["verify"]["steps"]
    assert verify[0]["with"]["fetch-depth"] == 0
    run = next(s for s in verify if "make verify" in s.get("run", ""))
    assert run["run"] == 'make verify SINCE="$SINCE"' and "continue-on-error" not in run
    assert run["env"]["SINCE"] == "${{ steps.since.outputs.since }}"
    since = next(s for s in verify if s.get("id") == "since")["run"]
    assert "published/published-commit" in since and 'git diff --quiet "$since" HEAD -- llm-exec.lock' in since
    cached = next(s for s in verify if s.get("uses", "").startswith("actions/cache@"))
    assert "requirements-models.txt" in cached["with"]["key"] and cached["with"]["path"] == "~/.cache/llm-exec/models"
    assert any(s.get("run") == 'echo "$GITHUB_SHA" > site/published-commit' for s in jobs["build"]["steps"])


def test_untrusted_preview_checks_changed_entries_and_never_saves_a_cache():
    preview = load("preview.yml")
    found = steps(preview)
    assert not [s for s in found if s.get("uses", "").startswith("actions/cache@")]  # restore only
    assert all("cache" not in s.get("with", {}) for s in found if "setup-python" in s.get("uses", ""))
    check = next(s for s in found if "make verify SINCE=" in s.get("run", ""))
    assert check["continue-on-error"] is True  # advisory
    build = next(s for s in found if s.get("env", {}).get("LLM_EXEC_MODE") == "preview")
    assert build["env"]["LLM_EXEC_PREVIEW_EXECUTE"] == "1"


def test_untrusted_preview_build_has_no_secrets_or_write_access():
    preview = load("preview.yml")
    assert list(preview["on"]) == ["pull_request"]
    assert preview["permissions"] == {"contents": "read"}
    assert all("permissions" not in job for job in preview["jobs"].values())
    assert "secrets." not in (WORKFLOWS / "preview.yml").read_text()
    assert any(s.get("env", {}).get("LLM_EXEC_MODE") == "preview" for s in steps(preview))


def test_trusted_deploy_never_checks_out_or_runs_pr_code():
    deploy = load("preview-deploy.yml")
    assert list(deploy["on"]) == ["workflow_run"] and deploy["on"]["workflow_run"]["workflows"] == ["preview"]
    assert all("actions/checkout" not in s.get("uses", "") for s in steps(deploy))
    commands = "\n".join(s.get("run", "") for s in steps(deploy))
    for runs_code in ("python", "pip ", "mkdocs", "bash preview", "sh preview", "./preview", "make"):
        assert runs_code not in commands
    assert "tr -dc '0-9'" in commands  # the PR number from the artifact is untrusted
