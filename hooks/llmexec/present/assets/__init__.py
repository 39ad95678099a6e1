"""Static assets the hook adds to every site it builds (no CDN, no fonts from a service)."""

from pathlib import Path

CSS_PATH = "assets/llm-exec.css"


def css() -> str:
    # next to this file, as pip installs packages (unzipped); importlib.resources.files cost each build ~0.5 ms
    return Path(__file__).with_name("llm-exec.css").read_text(encoding="utf-8")
