"""What a job's child and its supervisor use of the zygote: a typed view, so that its wiring is visible to readers and tools."""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO, Protocol

from ..core.models import ModelSpec


class Share(Protocol):
    """The torch threads a lane's child may use for its next batch (worker/lanes.py)."""

    def now(self) -> int: ...

    def lane_done(self) -> None: ...


class Host(Protocol):
    """The zygote as code.py, generate.py and supervise.py see it (worker/zygote.py is the one implementation)."""

    out: BinaryIO  # the protocol channel; in a child, its report pipe
    specs: dict[str, ModelSpec]
    threads: int
    batch_size: int
    memory_limit: float  # GB a child may grow by before it is killed
    states: Path  # the checkpoints of code pages
    share: Share | None  # while a generate job's lanes run at once (lanes.ThreadShare)

    def send(self, **message: Any) -> None: ...

    def log(self, text: str, **extra: Any) -> None: ...

    def fork(self) -> int:
        """os.fork(), never while another lane's thread writes the protocol channel."""
        ...

    def model(self, role: str) -> Any:
        """The loaded model for a role (a LoadedModel, or an endpoint model with the same snippet API)."""
        ...
