"""Command line: `prepare` converts the configured preset models ahead of a build; `verify` re-executes and compares."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mkdocs.config import load_config

from ..core.settings import load_settings
from ..errors import LlmExecError
from ..core.models import converted_path, hub_snapshot, preset_chunk_paths


def prepare(config_file: Path) -> int:
    """Convert what is missing; when everything is ready this returns in a moment without importing torch."""
    config = load_config(str(config_file))
    settings = load_settings(config.extra, config_file.parent.resolve())
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
            print(f"llm-exec: {role}: {spec.artifact}: tuned on first use by a build that needs it "
                  "(a build from the lockfile never does)", file=sys.stderr)
            continue
        else:
            print(f"llm-exec: {role}: {spec.artifact}: local folder", file=sys.stderr)
            continue
        from ..worker.models import load_model

        started = time.perf_counter()
        print(f"llm-exec: {role}: {spec.artifact} ...", file=sys.stderr, flush=True)
        model = load_model(spec, settings.model_cache_dir, lambda text: print(f"llm-exec:   {text}", file=sys.stderr, flush=True))
        print(f"llm-exec: {role}: ready in {time.perf_counter() - started:.1f} s "
              f"({sum(p.numel() for p in model.model.parameters()) / 1e6:.0f}M parameters)", file=sys.stderr, flush=True)
    return 0


def verify(config_file: Path, since: str, report: Path | None) -> int:
    """A strict build in verify mode into a throwaway folder: re-executes every block (or, with `since`, the blocks
    whose lockfile entries were added or changed since that git ref), never writes the lockfile, and exits
    non-zero naming each block whose output differs. The drift report is written too."""
    env = {**os.environ, "LLM_EXEC_MODE": "verify", "LLM_EXEC_SINCE": since, "NO_MKDOCS_2_WARNING": "1"}
    if report:
        env["LLM_EXEC_REPORT"] = str(report.resolve())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="llm-exec-verify-") as site_dir:
        done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config_file.resolve()),
                               "-d", site_dir], env=env)
    verdict = "every re-executed block reproduced its lockfile entry" if done.returncode == 0 else "FAILED (see above)"
    print(f"llm-exec verify{f' --since {since}' if since else ''}: {verdict} "
          f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0 if done.returncode == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmexec")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="verify and convert the models named in mkdocs.yml, so builds start fast")
    p.add_argument("-f", "--config-file", type=Path, default=Path("mkdocs.yml"))
    v = sub.add_parser("verify", help="re-execute blocks and compare them with the lockfile; never writes it")
    v.add_argument("-f", "--config-file", type=Path, default=Path("mkdocs.yml"))
    v.add_argument("--since", default="", metavar="GIT_REF",
                   help="only the blocks whose lockfile entries were added or changed since this ref (default: all)")
    v.add_argument("--report", type=Path, default=None, help="where to write the drift report (Markdown)")
    args = parser.parse_args(argv)
    try:
        if args.command == "verify":
            return verify(args.config_file, args.since, args.report)
        return prepare(args.config_file)
    except LlmExecError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
