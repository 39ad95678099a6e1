"""How the engine starts its own Python processes (the worker): they import this very package."""

from __future__ import annotations

import os
import site
from collections.abc import Mapping
from pathlib import Path

PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # the folder that holds the llmexec package


def _site_dirs() -> set[Path]:
    return {Path(p).resolve() for p in (*site.getsitepackages(), site.getusersitepackages()) if p}


def child_env(environ: Mapping[str, str] | None = None, *, parent: Path = PACKAGE_PARENT) -> dict[str, str]:
    """The environment for `sys.executable -m llmexec...`. Installed (pip install, in site-packages), the child finds
    the package as this process did, and nothing is added: site-packages on PYTHONPATH would go before the standard
    library in the child and in every process a snippet starts. Anywhere else (an editable install's folder, a
    copied or vendored hooks/ folder that MkDocs put on sys.path while loading the hook), its folder goes first
    on PYTHONPATH, so the child never imports another copy of the package than this process runs."""
    env = dict(os.environ if environ is None else environ)
    if parent.resolve() not in _site_dirs():
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(parent), env.get("PYTHONPATH")]))
    return env
