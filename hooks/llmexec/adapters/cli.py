"""The command line, the core without a renderer: `prepare` the models, `lock` and `verify` the site, show its `status`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from ..core.models import converted_path, hub_snapshot, preset_chunk_paths
from ..core.settings import MODE_ENV, REPORT_ENV, SINCE_ENV, load_settings
from ..engine import Engine
from ..errors import LlmExecError
from ..plan.site import pages, read_config
from ..resolve.runner import runner_factory
from ..vocabulary import LOCK_COMMAND


def prepare(config_file: Path) -> int:
    """Convert what is missing; when everything is ready this returns in a moment without importing torch."""
    config = read_config(config_file)
    settings = load_settings(config.get("extra") or {}, config_file.resolve().parent)
    for role, spec in settings.models.items():
        if spec.kind == "preset":
            preset_chunk_paths(spec)  # the package must be installed even when a converted copy exists
            if (converted_path(spec, settings.model_cache_dir) / "config.json").is_file():
                print(f"llm-exec: {role}: {spec.artifact}: ready in {settings.model_cache_dir}", file=sys.stderr)
                continue
        elif spec.kind == "hub":
            hub_snapshot(spec)
            print(f"llm-exec: {role}: {spec.artifact}: found in the local Hugging Face cache", file=sys.stderr)
            continue
        elif spec.kind == "tuned":  # trained by the first build that executes a block using it, never here
            print(
                f"llm-exec: {role}: {spec.artifact}: tuned on first use by a build that needs it "
                "(a build from the lockfile never does)",
                file=sys.stderr,
            )
            continue
        else:
            print(f"llm-exec: {role}: {spec.artifact}: local folder", file=sys.stderr)
            continue
        from ..worker.models import load_model

        started = time.perf_counter()
        print(f"llm-exec: {role}: {spec.artifact} ...", file=sys.stderr, flush=True)
        model = load_model(
            spec, settings.model_cache_dir, lambda text: print(f"llm-exec:   {text}", file=sys.stderr, flush=True)
        )
        print(
            f"llm-exec: {role}: ready in {time.perf_counter() - started:.1f} s "
            f"({sum(p.numel() for p in model.model.parameters()) / 1e6:.0f}M parameters)",
            file=sys.stderr,
            flush=True,
        )
    return 0


def run(config_file: Path, mode: str, since: str = "", report: Path | None = None) -> int:
    """The core over the whole site, without a renderer: every page and notebook planned, every missing generation
    of the site batched, code run page by page, claims checked; the lockfile written in `lock` mode (and pruned
    after a complete run), only compared in `verify` mode. Exit status 1 if anything was reported."""
    started = time.perf_counter()
    config_file = config_file.resolve()
    config = read_config(config_file)
    environ = {**os.environ, MODE_ENV: mode, SINCE_ENV: since}
    if report:
        environ[REPORT_ENV] = str(report.resolve())
    settings = load_settings(config.get("extra") or {}, config_file.parent, environ=environ)
    errors: list[str] = []

    def on_error(message: str) -> None:
        errors.append(message)
        _say("ERROR", message)

    engine = Engine(settings, config_file.parent, runner_factory(), report=on_error, progress=lambda m: _say("INFO", m))
    try:
        found = pages(config_file, config)
        engine.prefetch([(p.where, p.markdown, p.line_offset) for p in found if not p.notebook])
        for page in found:
            if page.notebook:
                engine.process_notebook(page.path, page.where)
            else:
                engine.process_page(page.markdown, page=page.where, line_offset=page.line_offset, place=lambda i, h: [])
        pruned = engine.end_build(dirty=False)
        _say("INFO", engine.summary() + (f"; pruned {pruned} unused lockfile entries" if pruned else ""))
    finally:
        engine.close()
    verdict = "FAILED: see the errors above" if errors else "done"
    print(
        f"llm-exec {mode}{f' --since {since}' if since else ''}: {verdict} ({time.perf_counter() - started:.1f} s)",
        file=sys.stderr,
    )
    return 1 if errors else 0


def status(config_file: Path) -> int:
    """Per page: blocks, results in the lockfile, missing results (what `lock` would execute), and the claims that
    are false or cannot be checked against the lockfile; then the lockfile entries no page uses. Executes nothing."""
    config_file = config_file.resolve()
    config = read_config(config_file)
    settings = load_settings(config.get("extra") or {}, config_file.parent, environ={**os.environ, MODE_ENV: "preview"})
    settings = replace(settings, report=Path(os.devnull))
    rows, quiet = [], (lambda message: None)
    engine = Engine(settings, config_file.parent, runner_factory(), report=quiet, progress=quiet)
    for page in pages(config_file, config):
        before = replace(engine.resolver.recorder.stats)
        if page.notebook:
            engine.process_notebook(page.path, page.where)
        else:
            engine.process_page(page.markdown, page=page.where, line_offset=page.line_offset, place=lambda i, h: [])
        after = engine.resolver.recorder.stats
        missing = after.unexecuted - before.unexecuted
        rows.append(
            (
                page.where,
                after.cached - before.cached + missing,
                missing,
                after.claims - before.claims,
                after.failed_claims - before.failed_claims,
            )
        )
    stale = engine.resolver.store.lock.keys() - engine.resolver.store.used
    print(f"{'page':34} {'results':>8} {'missing':>8} {'claims':>7} {'false':>6}")
    for where, total, missing, claims, false in rows:
        print(f"{where:34} {total:>8} {missing:>8} {claims:>7} {false:>6}")
    print(
        f"\n{len(stale)} lockfile entr{'y' if len(stale) == 1 else 'ies'} no page uses (a complete `lock` prunes them)"
    )
    if any(row[2] or row[4] for row in rows):
        print(f"to record the missing results: {LOCK_COMMAND}")
        return 1
    return 0


def _say(level: str, message: str) -> None:
    print(f"{level:<7} -  llm_exec: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmexec")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="verify and convert the models named in mkdocs.yml, so builds start fast")
    p.add_argument("-f", "--config-file", type=Path, default=Path("mkdocs.yml"))
    lock = sub.add_parser("lock", help="execute what has no lockfile entry, record it, prune unused entries")
    lock.add_argument("-f", "--config-file", type=Path, default=Path("mkdocs.yml"))
    lock.add_argument(
        "--refresh",
        action="store_true",
        help="execute every block again (refresh mode); outputs "
        "unchanged within the tolerance keep their entries byte for byte",
    )
    st = sub.add_parser("status", help="per page: results in the lockfile, missing ones, false claims (runs nothing)")
    st.add_argument("-f", "--config-file", type=Path, default=Path("mkdocs.yml"))
    v = sub.add_parser("verify", help="re-execute blocks and compare them with the lockfile; never writes it")
    v.add_argument("-f", "--config-file", type=Path, default=Path("mkdocs.yml"))
    v.add_argument(
        "--since",
        default="",
        metavar="GIT_REF",
        help="only the blocks whose lockfile entries were added or changed since this ref (default: all)",
    )
    v.add_argument("--report", type=Path, default=None, help="where to write the drift report (Markdown)")
    args = parser.parse_args(argv)
    try:
        if args.command == "verify":
            return run(args.config_file, "verify", args.since, args.report)
        if args.command == "lock":
            return run(args.config_file, "refresh" if args.refresh else "auto")
        if args.command == "status":
            return status(args.config_file)
        return prepare(args.config_file)
    except LlmExecError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
