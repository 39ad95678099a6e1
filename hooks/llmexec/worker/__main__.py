"""The worker process: `python -m llmexec.worker`, JSON lines on stdin and stdout (see core/protocol.py)."""

from __future__ import annotations

import json
import os
import sys

from ..core.protocol import CodeRequest, GenerateRequest, from_json
from ..core.ranking import RankRequest
from . import machine
from .zygote import Zygote


def _versions() -> dict[str, str]:
    """The libraries that determine outputs, recorded with every result."""
    import platform

    import tokenizers
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
    }


def main() -> None:
    out = os.fdopen(os.dup(1), "wb")  # the protocol channel; stray prints below go to stderr, not into it
    os.dup2(2, 1)
    zygote = Zygote(out)
    zygote.send(op="ready", pid=os.getpid())
    for raw in sys.stdin.buffer:
        message = json.loads(raw)
        op = message["op"]
        if op == "configure":
            zygote.configure(message)
            zygote.send(op="configured", versions=_versions(), machine=machine.describe(zygote.threads))
        elif op == "code":
            blocks = [from_json(CodeRequest, b) for b in message["blocks"]]
            zygote.run_code(message["page"], blocks, message.get("resume", 0))
            zygote.send(op="result")  # each outcome went out once, streamed as it finished
        elif op == "generate":
            requests = [from_json(GenerateRequest, r) for r in message["requests"]]
            zygote.generate(requests)
            zygote.send(op="result")
        elif op == "rank":
            zygote.rank([from_json(RankRequest, r) for r in message["requests"]])
            zygote.send(op="result")  # each outcome went out once, streamed
        elif op == "shutdown":
            break


if __name__ == "__main__":
    main()
