"""Which lockfile entries were added or changed since a git ref: what `make verify SINCE=REF` re-executes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..errors import ConfigError, with_fix


def changed_keys(lockfile: Path, since: str) -> set[str]:
    """Keys of entries that differ from `since` in the working tree: added, modified, or new and untracked.
    A deleted entry needs no check (nothing published reads it); a renamed one counts as added."""
    diff = _git(lockfile, since, "diff", "--name-only", "--no-renames", "--diff-filter=AM", since, "--", ".")
    untracked = _git(lockfile, since, "ls-files", "--others", "--exclude-standard", "--", ".")
    return {Path(name).stem for name in (diff + untracked).splitlines() if name.endswith(".json")}


def _git(lockfile: Path, since: str, *args: str) -> str:
    folder = lockfile if lockfile.is_dir() else lockfile.parent
    while not folder.is_dir():
        folder = folder.parent
    try:
        done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(
            with_fix(
                f"SINCE={since!r}: cannot run git to find the changed lockfile entries ({exc})",
                "install git, or leave SINCE out to verify every block",
            )
        ) from None
    if done.returncode != 0:
        raise ConfigError(
            with_fix(
                f"SINCE={since!r}: git cannot compare {lockfile.name}/ with it: {done.stderr.strip() or done.returncode}",
                "name a commit that exists in this clone (in CI: actions/checkout with fetch-depth: 0), "
                "or leave SINCE out to verify every block",
            )
        )
    return done.stdout
