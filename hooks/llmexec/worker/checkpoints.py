"""Worker side: a page's or notebook's state after each block, saved so an edit re-executes from that block on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.files import atomic_write

MAX_BYTES = 256 * 1024 * 1024  # a bigger state is not worth a file: the page is replayed instead


def save(namespace: dict[str, Any], reserved: set[str], target: Path) -> bool:
    """Pickle the user's variables (cloudpickle: functions and classes defined in blocks too).
    Anything unpicklable (an open file, a generator) means no checkpoint, never a failure."""
    import cloudpickle

    state = {k: v for k, v in namespace.items() if k not in reserved and not k.startswith("__")}
    try:
        data = cloudpickle.dumps(state)
    except Exception:  # any object may refuse to pickle
        return False
    if len(data) > MAX_BYTES:
        return False
    atomic_write(target, data)
    return True


def restore(source: Path) -> dict[str, Any] | None:
    """The saved variables, or None when the file is missing or unreadable (then everything is re-executed)."""
    import pickle

    try:
        return pickle.loads(source.read_bytes())
    except Exception:  # a stale or corrupt checkpoint only costs a replay
        return None
