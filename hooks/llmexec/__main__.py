"""Command line: `python -m llmexec prepare` verifies and converts the configured preset models ahead of a build."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mkdocs.config import load_config

from .config import load_settings
from .errors import LlmExecError
from .models import converted_path, hub_snapshot, preset_chunk_paths


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
        else:
            print(f"llm-exec: {role}: {spec.artifact}: local folder", file=sys.stderr)
            continue
        from .runtime import load_model

        started = time.perf_counter()
        print(f"llm-exec: {role}: {spec.artifact} ...", file=sys.stderr, flush=True)
        model = load_model(spec, settings.model_cache_dir, lambda text: print(f"llm-exec:   {text}", file=sys.stderr, flush=True))
        print(f"llm-exec: {role}: ready in {time.perf_counter() - started:.1f} s "
              f"({sum(p.numel() for p in model.model.parameters()) / 1e6:.0f}M parameters)", file=sys.stderr, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmexec")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="verify and convert the models named in mkdocs.yml, so builds start fast")
    p.add_argument("-f", "--config-file", type=Path, default=Path("mkdocs.yml"))
    args = parser.parse_args(argv)
    try:
        return prepare(args.config_file)
    except LlmExecError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
