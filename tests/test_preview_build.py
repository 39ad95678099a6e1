"""A pull request's preview as CI builds it (.github/preview-build.sh): the site and the report are always written,
then the check fails naming each sentence the pull request made false."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

SCRIPT = ROOT / ".github" / "preview-build.sh"
PAGE = """# Greetings

```python exec id=greet
print("Good night.")
```

[The snippet wishes a good night]{check: "Good night" in greet.output}.
"""


def preview(site, out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The script, run from the project's folder as the workflow runs it from the repository's."""
    site.config()
    return subprocess.run(
        [str(SCRIPT), str(out)],
        cwd=site.root,
        capture_output=True,
        text=True,
        timeout=600,
        env={
            **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
            "PYTHON": sys.executable,
            "PR_NUMBER": "17",
            "NO_MKDOCS_2_WARNING": "1",
            **env,
        },
    )


def lockfile(site) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (site.root / "llm-exec.lock").glob("*.json")}


def test_a_pull_request_that_makes_a_sentence_false_gets_its_preview_and_then_a_failing_check(site, tmp_path):
    site.write("docs/index.md", PAGE)
    site.build()  # main: the lockfile holds the output the sentence is about
    before = lockfile(site)
    site.write("docs/index.md", PAGE.replace('print("Good night.")', 'print("Gute Nacht.")'))  # the pull request
    out = tmp_path / "preview"
    done = preview(site, out, LLM_EXEC_PREVIEW_EXECUTE="1")

    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    page = (out / "site" / "index.html").read_text()
    assert "Gute Nacht." in page and "Executed for this preview only" in page  # the new output, marked
    assert 'class="llmx-claim llmx-claim-false">The snippet wishes a good night' in page  # marked false, in red
    comment = (out / "drift-report.md").read_text()
    assert comment.startswith("Checked sentences that are false with this pull request's outputs")
    assert "- `docs/index.md:7`: The snippet wishes a good night" in comment  # the report's list
    assert (out / "pr-number").read_text() == "17\n"
    verdict = done.stdout.split("The preview check fails")[1]
    assert "- docs/index.md:7: The snippet wishes a good night" in verdict
    assert "reported errors" not in verdict  # the false sentence alone does not fail the build: the site is complete
    assert lockfile(site) == before  # a preview writes no lockfile

    site.write("docs/index.md", PAGE)  # a pull request that leaves every output as it is
    done = preview(site, out, LLM_EXEC_PREVIEW_EXECUTE="1")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "The preview check passes" in done.stdout and (out / "verdict.md").read_text() == ""
    assert "Gute Nacht." not in (out / "site" / "index.html").read_text()


def test_a_build_error_in_the_preview_fails_the_check_naming_it_and_still_writes_the_site(bare_site, tmp_path):
    """A block this preview cannot show (an id used twice: an error before anything runs) is named too."""
    bare_site.write("docs/index.md", PAGE + "\n```python exec id=greet\nprint(1)\n```\n")
    out = tmp_path / "preview"
    done = preview(bare_site, out)
    assert done.returncode == 1
    verdict = done.stdout.split("The preview check fails")[1]
    assert "The preview build reported errors (mkdocs build --strict, exit status 1):" in verdict
    assert "- ERROR   -  llm_exec: docs/index.md:" in verdict
    assert (out / "site" / "index.html").is_file() and (out / "drift-report.md").is_file()
