"""The engine as an installed package: the `llm-exec` MkDocs plugin, and another site using it, set up as README says."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import pytest
from mkdocs.exceptions import Abort

from conftest import HOOK, ROOT, Site, calls, outputs
from llmexec.core.launch import child_env

PAGE = """
# Home

```generate model=both max_new_tokens=4
hello world
```

```python exec
print("sum:", 6 * 7)
```
"""


def plugin_site(site: Site, *, hook: bool = False) -> Site:
    """The same throwaway site, configured with `plugins: [llm-exec]` (and, if asked, the hook as well)."""
    config = site.config()
    text = config.read_text()
    if not hook:
        text = re.sub(r"(?m)^hooks: .*\n", "", text)
    config.write_text(text + "plugins: [llm-exec]\n")
    site.config = lambda: config  # type: ignore[method-assign]  # keep this file as it is on build()
    return site


def test_the_plugin_builds_a_page_as_the_hook_does(bare_site, fake):
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    by_hook = outputs(bare_site.html())
    shutil.rmtree(bare_site.root / "site")
    shutil.rmtree(bare_site.root / ".cache")
    shutil.rmtree(bare_site.root / "llm-exec.lock")
    plugin_site(bare_site).build()
    assert "hooks:" not in (bare_site.root / "mkdocs.yml").read_text()
    assert len(by_hook) == 3 and outputs(bare_site.html()) == by_hook
    assert calls(fake) == 4  # both builds executed the page: two generations and a code block each
    assert (bare_site.root / "site" / "assets" / "llm-exec.css").is_file()


def test_the_plugin_and_the_hook_together_stop_the_build_at_start_up(bare_site, fake, caplog):
    bare_site.write("docs/index.md", PAGE)
    with pytest.raises(Abort, match="BuildError"):
        plugin_site(bare_site, hook=True).build()
    assert f"configures llm-exec twice: as the plugin `llm-exec` and as the hook {HOOK}" in caplog.text
    assert "--> keep one: remove `llm-exec` from `plugins:`" in caplog.text
    assert calls(fake) == 0 and not (bare_site.root / "site" / "index.html").exists()


def test_plugin_options_are_refused_naming_where_the_settings_go(bare_site):
    bare_site.write("docs/index.md", "# Home\n")
    config = bare_site.config()
    config.write_text(re.sub(r"(?m)^hooks: .*\n", "", config.read_text()) + "plugins: [{llm-exec: {timeout: 5}}]\n")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "Plugin 'llm-exec' option 'timeout': this plugin takes no options" in done.stderr
    assert "--> move `timeout` under extra.llm_exec in mkdocs.yml" in done.stderr


def test_the_engine_s_own_processes_get_its_folder_on_pythonpath_only_when_it_is_not_installed(tmp_path):
    installed = Path(sysconfig.get_paths()["purelib"])
    assert "PYTHONPATH" not in child_env({"HOME": "/h"}, parent=installed)
    assert child_env({"PYTHONPATH": "/x"}, parent=installed)["PYTHONPATH"] == "/x"
    assert child_env({"PYTHONPATH": "/x"}, parent=tmp_path)["PYTHONPATH"] == f"{tmp_path}{os.pathsep}/x"  # vendored
    assert child_env({}, parent=tmp_path)["PYTHONPATH"] == str(tmp_path)


# ---- another site, outside this repository, with the engine pip-installed from it ----


def _plain_env() -> dict[str, str]:
    """A fresh shell's environment: nothing that points at this repository or sets a mode."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("LLM_EXEC_")} | {
        "NO_MKDOCS_2_WARNING": "1"
    }


def _venv_with_the_engine(where: Path) -> Path:
    """A new virtual environment with `pip install <this repository>` (not editable). To stay fast and offline, its
    dependencies (mkdocs, torch...) are this environment's, read through a .pth line that comes after its own
    site-packages (pip and setuptools too); the engine is installed with --no-deps from a copy of the repository's
    package files."""
    source = where / "llm-exec-source"
    shutil.copytree(ROOT / "hooks", source / "hooks", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)  # pip: ours
    python = venv / "bin" / "python"
    purelib = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (purelib / "zz-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", str(source)],
        capture_output=True,
        text=True,
        cwd=where,
        env=_plain_env(),
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    return python


@pytest.mark.real_models  # about 30 s on the shared 2-core machine (three builds, one worker start): make test-models
def test_an_outside_site_builds_with_the_engine_installed_from_this_repository(tmp_path, tiny_models):
    started = time.monotonic()
    python = _venv_with_the_engine(tmp_path)
    project = tmp_path / "my-site"
    (project / "docs").mkdir(parents=True)
    (project / "mkdocs.yml").write_text(
        textwrap.dedent(f"""\
        site_name: My site
        plugins:
          - llm-exec
        extra:
          llm_exec:
            models:
              base: {{path: {tiny_models["base"]}}}
              instruct: {{path: {tiny_models["instruct"]}}}
        """)
    )
    (project / "docs" / "index.md").write_text(
        PAGE + "\n```python exec\nimport os, llmexec\nprint(llmexec.__file__)\n"
        "print('PYTHONPATH:', os.environ.get('PYTHONPATH'))\n```\n"
    )
    where = subprocess.run(
        [str(python), "-c", "import sys, llmexec; print(llmexec.__file__); print(sys.path)"],
        cwd=project,
        capture_output=True,
        text=True,
        env=_plain_env(),
        check=True,
    ).stdout
    installed = python.parent.parent.resolve()
    assert Path(where.splitlines()[0]).resolve().is_relative_to(installed), where
    assert str(ROOT / "hooks") not in where  # neither this repository's folder nor its editable install

    def build(*args: str, cwd: Path = project) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), "-m", "mkdocs", "build", "--strict", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            env=_plain_env(),
            timeout=600,
        )

    first = build()
    assert first.returncode == 0, first.stderr[-3000:]
    assert re.search(r"llm_exec: 4 blocks executed, 0 from cache, 0 failed", first.stderr), first.stderr[-2000:]
    page = outputs((project / "site" / "index.html").read_text())
    assert "sum: 42" in page[2]
    worker_engine, worker_path = page[3].strip().splitlines()
    assert Path(worker_engine).resolve().is_relative_to(installed)  # the worker runs the installed engine too,
    assert worker_path == "PYTHONPATH: None"  # found as installed: nothing put before the standard library
    assert len(list((project / "llm-exec.lock").glob("*.json"))) == 4  # its own lockfile, next to its mkdocs.yml
    assert (project / ".cache" / "llm-exec" / "results").is_dir()
    assert (project / "site" / "assets" / "llm-exec.css").is_file()  # package data, read from the installed wheel
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    second = build("-f", str(project / "mkdocs.yml"), cwd=elsewhere)
    assert second.returncode == 0, second.stderr[-3000:]
    assert re.search(r"llm_exec: 0 blocks executed, 4 from cache, 0 failed", second.stderr), second.stderr[-2000:]
    assert not list(elsewhere.iterdir())

    (project / "hooks").mkdir()  # the hook form, as README shows it: this repository's hook file, copied
    shutil.copy(HOOK, project / "hooks" / "llm_exec.py")
    config = project / "mkdocs.yml"
    config.write_text(config.read_text().replace("plugins:\n  - llm-exec\n", "hooks:\n  - hooks/llm_exec.py\n"))
    hooked = build("-d", str(tmp_path / "site-hook"))
    assert hooked.returncode == 0, hooked.stderr[-3000:]
    assert "0 blocks executed, 4 from cache" in hooked.stderr
    assert outputs((tmp_path / "site-hook" / "index.html").read_text()) == page
    print(f"outside site: venv, install and three builds took {time.monotonic() - started:.1f} s")
