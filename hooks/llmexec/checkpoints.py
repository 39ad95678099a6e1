"""Worker side: a page's or notebook's state after each block, saved so an edit re-executes from that block on."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

MAX_BYTES = 256 * 1024 * 1024  # a bigger state is not worth a file: the page is replayed instead


def path(states: Path, key: str) -> Path:
    """Where the state after the block with this key is kept (the engine checks it, the worker writes it)."""
    return states / f"{key}.pkl"


def save(namespace: dict[str, Any], reserved: set[str], target: Path) -> bool:
    """Pickle the user's variables (cloudpickle: functions and classes defined in blocks too).
    Anything unpicklable (an open file, a generator) means no checkpoint, never a failure."""
    import cloudpickle

    state = {k: v for k, v in namespace.items() if k not in reserved and not k.startswith("__")}
    try:
        data = cloudpickle.dumps(state)
    except Exception:  # noqa: BLE001 - any object may refuse to pickle
        return False
    if len(data) > MAX_BYTES:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    temp.write_bytes(data)
    os.replace(temp, target)
    return True


def restore(source: Path) -> dict[str, Any] | None:
    """The saved variables, or None when the file is missing or unreadable (then everything is re-executed)."""
    import pickle

    try:
        return pickle.loads(source.read_bytes())
    except Exception:  # noqa: BLE001 - a stale or corrupt checkpoint only costs a replay
        return None
