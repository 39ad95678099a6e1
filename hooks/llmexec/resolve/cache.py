"""The result store: one JSON file per key, written atomically, successes only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import SCHEMA_VERSION
from ..core.files import atomic_write


@dataclass(frozen=True)
class Corrupt:
    """An entry that exists but cannot be used; it is executed again and overwritten."""

    path: Path
    reason: str


class ResultCache:
    """Maps keys to result dicts stored as `<root>/<key>.json`: the local cache and the lockfile share it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def keys(self) -> set[str]:
        return {p.stem for p in self.root.glob("*.json")} if self.root.is_dir() else set()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def get(self, key: str) -> dict[str, Any] | Corrupt | None:
        path = self.path(key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            return Corrupt(path, f"unreadable: {exc.strerror}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            return Corrupt(path, f"not valid JSON ({exc.msg} at line {exc.lineno})")
        if not isinstance(value, dict) or value.get("schema") != SCHEMA_VERSION or value.get("key") != key:
            return Corrupt(path, "written by another schema version or for another key")
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Write atomically: a crash leaves either the old entry or the new one, never half of one."""
        record = {"schema": SCHEMA_VERSION, "key": key, **value}
        atomic_write(self.path(key), json.dumps(record, sort_keys=True, ensure_ascii=False, indent=1) + "\n")
