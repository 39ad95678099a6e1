"""The words the configuration, the fences, the engine and the worker share: roles, modes, templates, limits, fixes."""

from __future__ import annotations

from typing import Literal

Mode = Literal["auto", "locked", "refresh", "preview", "verify"]
MODES: tuple[Mode, ...] = ("auto", "locked", "refresh", "preview", "verify")
Template = Literal["auto", "chat", "raw"]
TEMPLATES: tuple[Template, ...] = ("auto", "chat", "raw")
OutputFormat = Literal["text", "markdown", "html"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("text", "markdown", "html")
Status = Literal["ok", "error", "timeout", "memory", "crashed", "skipped", "unexecuted", "pending"]  # pending: `serve`
FinishReason = Literal["eos", "length", "stop", ""]
TURN_FORMATS = ("gemma", "chatml")  # the turn layouts a tuned model can learn: core/templates.py lays them out

REQUIRED_ROLES = ("base", "instruct")  # always configured (the offline pair by default)
DISPLAY_ORDER = ("base", "tuned", "instruct")  # columns of model=all; `tuned` exists when a recipe is configured
MODEL_SETS = {"both": ("base", "instruct")}  # model=both; model=all is every configured role in DISPLAY_ORDER

MAX_NEW_TOKENS = (1, 4096)
BATCH_SIZE = (1, 64)
FIGURE = "application/vnd.llm-exec.figure+json"  # a figure's data next to its PNG: compared, where the PNG is not
LOCK_COMMAND = "make lock   (runs: python -m llmexec lock), then commit llm-exec.lock/"


def seconds_problem(value: object) -> str:
    """'' for a usable time limit, else why not (the same rule for extra.llm_exec.timeout and timeout= on a fence)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    return "" if ok else f"must be a positive number of seconds, got {value!r}"


def max_new_tokens_problem(value: object) -> str:
    low, high = MAX_NEW_TOKENS
    ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    return "" if ok else f"must be a whole number from {low} to {high}, got {value!r}"


CLAIM_HELPERS = (
    "len",
    "any",
    "all",
    "min",
    "max",
    "abs",
    "round",
    "sum",
    "sorted",
    "set",
    "list",
    "str",
    "int",
    "float",
    "matches",
    "words",
    "about",
    "True",
    "False",
    "None",
)  # what a claim's check may call besides block ids
FAILURES = {
    "error": "raised an exception",
    "timeout": "ran past its time limit",
    "memory": "ran past its memory limit",
    "crashed": "crashed",
}  # how a failed block is described, by status
FIXES = {
    "error": "fix the code (the traceback gives the line), or drop `exec` to show the block without running it",
    "timeout": "make it faster, or raise the limit: timeout=SECONDS on the fence, or extra.llm_exec.timeout in mkdocs.yml",
    "crashed": "the process running the block died; look for os._exit, a native crash or memory use in the snippet",
    "memory": "use less memory (smaller pieces, `del` what is done with), or raise the limit: "
    "extra.llm_exec.memory_limit (GB) in mkdocs.yml",
}
