"""Static assets the hook adds to every site it builds (no CDN, no fonts from a service)."""

from importlib.resources import files

CSS_PATH = "assets/llm-exec.css"


def css() -> str:
    return files(__name__).joinpath("llm-exec.css").read_text(encoding="utf-8")
