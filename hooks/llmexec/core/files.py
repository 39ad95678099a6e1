"""Files written and hashed the one way the engine knows: atomically, and by sha256."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path

_file_memo: dict[tuple[str, int, int], str] = {}


def atomic_write(path: Path, data: str | bytes) -> None:
    """Temp file with a process-unique name in the same folder, fsync, then os.replace: a crash leaves the old
    file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with temp.open("wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def digest(fields: Mapping[str, object]) -> str:
    """sha256 of named fields as canonical JSON (sorted keys): how every key and identity is made."""
    text = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes; memoized on (path, size, mtime), so a build hashes an unchanged file once."""
    stat = path.stat()
    stamp = (str(path), stat.st_size, stat.st_mtime_ns)
    if stamp not in _file_memo:
        _file_memo[stamp] = hash_stream([path])
    return _file_memo[stamp]


def hash_stream(paths: list[Path], copy_to: Path | None = None) -> str:
    """sha256 of the files' bytes joined in order (chunks of one file); optionally written out as one file."""
    sha = hashlib.sha256()
    out = copy_to.open("wb") if copy_to else None
    try:
        for path in paths:
            with path.open("rb") as handle:
                while block := handle.read(1 << 20):
                    sha.update(block)
                    if out:
                        out.write(block)
    finally:
        if out:
            out.close()
    return sha.hexdigest()


def listing_sha256(root: Path, files: list[Path]) -> str:
    """sha256 over files' paths (relative to root) and bytes: a folder's identity, or a set of weight files'."""
    sha = hashlib.sha256()
    for path in files:
        sha.update(path.relative_to(root).as_posix().encode() + b"\0")
        sha.update(file_sha256(path).encode() + b"\n")
    return sha.hexdigest()


def checkpoint_path(states: Path, key: str) -> Path:
    """Where the state after the block with this key is kept (the engine checks it, the worker writes it)."""
    return states / f"{key}.pkl"
