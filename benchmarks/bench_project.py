"""bench.py's figures beyond its synthetic sites: MkDocs' user guide added, a fresh clone's `make site`, `make test`."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench

ROOT = bench.ROOT
GUIDE = Path(__file__).resolve().parent / "mkdocs-user-guide"
# The Markdown extensions of the user guide's own mkdocs.yml (MkDocs 1.6.1) that this project installs, on top of the
# benchmark site's two (callouts, mdx_gh_links and mkdocs-click are not installed: their syntax stays text). The
# guide links to pages it does not come with (getting started, the developer guide, images): MkDocs reports those at
# INFO level instead of failing --strict. Both sites, hooked and plain, get the same settings.
SITE_EXTENSIONS = "markdown_extensions: [pymdownx.highlight, pymdownx.superfences]"
GUIDE_SETTINGS = (
    "markdown_extensions: [pymdownx.highlight, pymdownx.superfences, {toc: {permalink: true}}, attr_list, def_list, "
    "tables]\nvalidation: {links: {not_found: info}}"
)
GUIDE_TARGET = bench.CACHED_TARGET  # the guide's pages run no block: the hook should cost as little as on the site
FRESH_TARGET = 150.0  # seconds: `git clone` then `make site` on a machine without the project's venv or models
TEST_TARGET = 90.0  # seconds: the tests of `make test` on 2 cores
BUILT = re.compile(r"Documentation built in ([\d.]+) seconds")


def with_guide(site: Path, root: Path) -> Path:
    """A copy of `site` (its lockfile and cache included, its built site left out) with the user guide's pages under
    docs/user-guide/ and the extensions they use."""
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(site, root, ignore=lambda folder, _: ["site"] if Path(folder) == site else [])
    shutil.copytree(GUIDE / "user-guide", root / "docs" / "user-guide")
    config = (root / "mkdocs.yml").read_text()
    if SITE_EXTENSIONS not in config:
        sys.exit(f"{root / 'mkdocs.yml'}: no line {SITE_EXTENSIONS!r} to extend --> keep it in bench.make_site")
    (root / "mkdocs.yml").write_text(config.replace(SITE_EXTENSIONS, GUIDE_SETTINGS))
    return root


def user_guide(hooked: Path, plain: Path, runs: int = bench.CACHED_RUNS) -> tuple[float, float, float, Path]:
    """The fully cached benchmark site and its plain twin, both with the user guide added, built alternately: prints
    the fastest and median wall and CPU times (bench.cached_comparison); returns the fastest's ratios (hook over no
    hook), the plain build's fastest (seconds) and the hooked site's folder."""
    a = with_guide(hooked, hooked.with_name(hooked.name + "-guide"))
    b = with_guide(plain, plain.with_name(plain.name + "-guide"))
    _, err, _, _ = bench.build_timed(a)  # a first build of each: the copies' caches warm, nothing executes
    executed = bench.summary(err)[0]
    if executed:
        sys.exit(
            f"{a}: {executed:.0f} blocks executed in a copy of a cached site --> the cache key depends on its path"
        )
    bench.build_timed(b)
    pages = sorted((GUIDE / "user-guide").glob("*.md"))
    size = sum(p.stat().st_size for p in pages) / 1000
    what = f"with MkDocs' user guide added ({len(pages)} pages, {size:.0f} kB of Markdown, no block executed), hook vs no hook"
    return (*bench.cached_comparison(what, a, b, GUIDE_TARGET, runs), a)


def fresh_site() -> str:
    """`git clone` of this checkout's HEAD into a temporary folder and `make site` there (its own .venv, an empty
    model cache), timed (wall); prints the figure and returns it in short."""
    head = bench.git("rev-parse", "HEAD")
    dirty = " (its uncommitted changes left out)" if bench.git("status", "--porcelain", "--untracked-files=no") else ""
    pip_cache = Path(pip("cache", "dir"))
    sources = {  # local wheel folders or indexes in pip's configuration make installs faster than a fresh machine's
        line.split("=", 1)[1].strip("'")
        for line in pip("config", "list").splitlines()
        if re.search(r"find-links|index-url", line)
    }
    pip_mb = sum(f.stat().st_size for f in pip_cache.rglob("*") if f.is_file()) / 2**20 if pip_cache.is_dir() else 0.0
    with tempfile.TemporaryDirectory(prefix="bench-fresh-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(ROOT), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", "--detach", head], check=True)
        # nothing of this checkout's environment: not its code (PYTHONPATH), venv or make settings; no converted model
        env = {
            k: v
            for k, v in bench.ENV.items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
        }
        env["LLMX_MODEL_CACHE"] = str(Path(tmp) / "models")
        started = time.perf_counter()
        done = subprocess.run(["make", "site"], cwd=clone, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        converted = len(list((Path(tmp) / "models").glob("*/")))
    output = done.stdout + done.stderr
    if done.returncode != 0:
        print(
            f"fresh clone, make site: FAILED (exit {done.returncode}) after {wall:.0f} s:\n{output[-3000:]}", flush=True
        )
        return f"failed (exit {done.returncode})"
    found, built = bench.SUMMARY.search(output), BUILT.search(output)
    blocks = f"{found[1]} executed / {found[2]} from cache" if found else "no llm_exec summary line"
    print(
        f"fresh clone of {head[:10]}{dirty}, make site: {wall:.0f} s (its build {built[1] if built else '?'} s, "
        f"{blocks}, {converted} models converted)  target <= {FRESH_TARGET:.0f} s; a new .venv and model cache, "
        f"pip's own cache as found ({pip_mb:.0f} MiB in {pip_cache})"
        + (f", pip's configured sources {', '.join(sorted(sources))}" if sources else ""),
        flush=True,
    )
    return f"{wall:.0f} s ({blocks})"


def test_command() -> list[str]:
    """The pytest command of the Makefile's `test` target, its $(PY) being this interpreter (the checkout's .venv)."""
    rule = re.search(r"^test:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    line = next((x for x in (rule[1] if rule else "").splitlines() if "$(PY) -m pytest" in x), None)
    if line is None:
        sys.exit("Makefile: no `$(PY) -m pytest` line under `test:` --> bench_project.test_command reads it from there")
    return [sys.executable, *shlex.split(line.split("$(PY)", 1)[1].split("&&", 1)[0].replace("$$", "$"))]


def make_test() -> str:
    """The tests of `make test` in this checkout, timed (wall); prints the figure and returns it in short (the
    seconds, how many passed, and any that did not)."""
    command = test_command()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=bench.ENV, capture_output=True, text=True)
    wall = time.perf_counter() - started
    last = ([x for x in done.stdout.splitlines() if re.match(r"=+ .* in [\d.]+s", x)] or [""])[-1]
    counts = dict(
        (kind, int(n)) for n, kind in re.findall(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)", last)
    )
    tests = ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "no pytest summary line"
    print(
        f"make test's tests ({shlex.join(command[1:])}): {wall:.0f} s, {tests}, on {os.cpu_count()} cores  "
        f"target <= {TEST_TARGET:.0f} s on 2 cores (its ruff and mypy checks not counted, as in its own timing)",
        flush=True,
    )
    if done.returncode != 0:
        print(f"  pytest exited with {done.returncode}:\n{done.stdout[-3000:]}{done.stderr[-1000:]}", flush=True)
    return f"{wall:.0f} s ({tests})"


def pip(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True).stdout.strip()
