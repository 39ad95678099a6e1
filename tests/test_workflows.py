"""The GitHub workflows: valid (actionlint), and split so untrusted PR code never meets write permissions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
SCRIPT = (
    ROOT / ".github" / "preview-build.sh"
)  # what the untrusted preview job runs; tests/test_preview_build.py runs it
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
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.event.nope.title }}\n        uses: actions/checkout@v4\n"
    )
    result = subprocess.run([actionlint, "-no-color", str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "bad.yml" in result.stdout


def test_publish_builds_locked_without_torch():
    publish = load("publish.yml")
    assert publish["on"]["push"]["branches"] == ["main"]
    build = steps({"jobs": {"build": publish["jobs"]["build"]}})
    installs = [s["run"].split("\n") for s in build if "pip install" in s.get("run", "")]
    assert installs == [
        [
            "python -m pip install -r requirements-site.txt",  # the engine without its exec extra:
            "python -m pip install --no-deps --no-build-isolation .",
            "",
        ]
    ]  # no torch
    assert any(
        s.get("env", {}).get("LLM_EXEC_MODE") == "locked" and "mkdocs build --strict" in s.get("run", "") for s in build
    )
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
    build = next(s for s in found if ".github/preview-build.sh" in s.get("run", ""))
    assert '.github/preview-build.sh "$RUNNER_TEMP/preview" "origin/$BASE_REF"' in build["run"]
    assert build["env"]["LLM_EXEC_PREVIEW_EXECUTE"] == "1" and build["env"]["BASE_REF"] == "${{ github.base_ref }}"
    script = SCRIPT.read_text()
    assert "LLM_EXEC_MODE=preview " in script
    assert 'llmexec verify --since "$base" --report "$out/verify-report.md" \\\n    || echo' in script  # advisory


def test_a_failing_preview_check_is_still_uploaded_then_published_and_commented():
    """A pull request that makes a sentence false is when its preview matters: the build step records the
    script's status instead of failing, the upload runs anyway, the last step fails the check, and the deploy
    workflow publishes and comments failed runs too."""
    found = steps(load("preview.yml"))
    build = next(i for i, s in enumerate(found) if ".github/preview-build.sh" in s.get("run", ""))
    upload = next(i for i, s in enumerate(found) if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert found[build]["id"] == "build" and build < upload == len(found) - 2
    assert "|| status=$?" in found[build]["run"] and 'echo "status=$status" >> "$GITHUB_OUTPUT"' in found[build]["run"]
    assert found[upload]["if"] == "${{ !cancelled() }}"
    fail = found[-1]
    assert fail["if"] == "steps.build.outputs.status != '0'"
    assert fail["run"] == 'cat "$RUNNER_TEMP/preview/verdict.md"\nexit 1\n'
    assert os.access(SCRIPT, os.X_OK)
    condition = " ".join(load("preview-deploy.yml")["jobs"]["deploy"]["if"].split())
    assert condition == (
        "github.event.workflow_run.event == 'pull_request' && (github.event.workflow_run.conclusion "
        "== 'success' || github.event.workflow_run.conclusion == 'failure')"
    )


def test_untrusted_preview_build_has_no_secrets_or_write_access():
    preview = load("preview.yml")
    assert list(preview["on"]) == ["pull_request"]
    assert preview["permissions"] == {"contents": "read"}
    assert all("permissions" not in job for job in preview["jobs"].values())
    assert "secrets." not in (WORKFLOWS / "preview.yml").read_text()
    assert any(".github/preview-build.sh" in s.get("run", "") for s in steps(preview))  # builds in preview mode


def test_trusted_deploy_never_checks_out_or_runs_pr_code():
    deploy = load("preview-deploy.yml")
    assert list(deploy["on"]) == ["workflow_run"] and deploy["on"]["workflow_run"]["workflows"] == ["preview"]
    assert all("actions/checkout" not in s.get("uses", "") for s in steps(deploy))
    commands = "\n".join(s.get("run", "") for s in steps(deploy))
    for runs_code in ("python", "pip ", "mkdocs", "bash preview", "sh preview", "./preview", "make"):
        assert runs_code not in commands
    assert "tr -dc '0-9'" in commands  # the PR number from the artifact is untrusted
