"""Where results come from and go to in each execution mode: the committed lockfile and the local cache."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..core.modes import Policy
from ..errors import with_fix
from ..vocabulary import LOCK_COMMAND
from .cache import Corrupt, ResultCache

Verdict = Literal["stored", "new", "changed", "matched"]


@dataclass
class Drift:
    """What verify and preview builds found, for the report."""

    changed: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)  # (old entry, new entry)
    matched: list[tuple[dict[str, Any], dict[str, Any]]] = field(
        default_factory=list
    )  # verify: reproduced, within tolerance
    unexecuted: list[tuple[dict[str, Any], dict[str, Any] | None]] = field(default_factory=list)  # (new, old?)
    new: list[dict[str, Any]] = field(default_factory=list)  # no entry; in preview: executed for the preview only
    claims: list[tuple[str, str, str, str]] = field(default_factory=list)  # (where, sentence, check, why) that fail


class Store:
    """The lockfile and the cache, read and written as the mode's policy (core/modes.py) says."""

    def __init__(
        self,
        policy: Policy,
        lock: ResultCache,
        cache: ResultCache,
        progress: Callable[[str], None],
        report: Callable[[str], None],
        *,
        only: set[str] | None = None,
    ) -> None:
        self.policy, self.lock, self.cache, self.progress, self.report = policy, lock, cache, progress, report
        self.only = only
        self.used: set[str] = set()
        self.weights: dict[str, dict[str, str]] = {}  # key -> {role: sha256 of tuned weights}: shown, not compared
        self.drift = Drift()
        self._places: dict[tuple[Any, ...], dict[str, Any]] | None = None
        self._hits: dict[str, dict[str, Any]] = {}  # entries read in this build: prefetch and the page ask alike

    @property
    def may_execute(self) -> bool:
        return self.policy.may_execute

    def lookup(self, key: str) -> dict[str, Any] | None:
        """The stored outcome for a key, or None when it must be executed (or cannot be, in locked/preview)."""
        self.used.add(key)
        if not self.policy.reads_stores(key, self.only):
            return None
        entry = self._hits.get(key)
        if entry is None:
            entry = self._read(self.lock, key)
            if entry is None and self.policy.reads_cache:
                entry = self._read(self.cache, key)
                if entry is not None:
                    self.lock.put(key, entry)  # executed before (another branch, a pruned entry): lock it again
            if entry:
                self._provenance(key, entry)
                self._hits[key] = entry
        return entry["outcome"] if entry else None

    def locked_entry(self, key: str) -> dict[str, Any] | None:
        entry = self.lock.get(key)
        return entry if isinstance(entry, dict) else None

    def record(self, key: str, entry: dict[str, Any]) -> Verdict:
        """Store a successful execution: both stores in auto/refresh; nothing in verify (it compares instead)
        nor in preview (the output is shown for this build only)."""
        from .tolerance import compare  # only a build that executes something compares: a cached one skips it

        self._hits.pop(key, None)
        self._provenance(key, entry)
        if self.policy.compares:
            old = self.locked_entry(key)
            if old is None:
                self.drift.new.append(entry)
                return "new"
            if compare(old, entry):
                self.drift.changed.append((old, entry))
                return "changed"
            self.drift.matched.append((old, entry))
            return "matched"
        if not self.policy.records:  # a preview: shown for this build only
            self.drift.new.append(entry)
            return "new"
        stored = {
            k: v for k, v in entry.items() if k not in ("line", "where")
        }  # lines move with prose edits: not stored
        old = self.locked_entry(key)
        if (
            old is None
            or compare(old, entry)
            or _place(old) != _place(entry)
            or ("machine" in entry and "machine" not in old)
        ):  # an entry from before the machine was recorded
            self.lock.put(key, stored)  # unchanged outputs (within the tolerance) keep their entry byte for byte
        self.cache.put(key, stored)
        return "stored"

    def not_executed(self, entry: dict[str, Any]) -> None:
        """A preview/locked block whose inputs have no lockfile entry; the old entry at the same place, if any."""
        if self._places is None:  # read the lockfile once per build, not once per block
            self._places = {_place(e): e for k in self.lock.keys() if (e := self.locked_entry(k))}  # noqa: SIM118 - not a dict
        old = self._places.get(_place(entry))
        self.drift.unexecuted.append((entry, old))

    def finish(self, *, complete: bool) -> int:
        """After a complete, successful, non-dirty build: drop lockfile entries no page uses any more."""
        if not self.policy.records or not complete:
            return 0
        stale = self.lock.keys() - self.used
        for key in stale:
            self.lock.delete(key)
        return len(stale)

    def _provenance(self, key: str, entry: dict[str, Any]) -> None:
        """The tuned weights that produced an entry's outputs: machine-dependent bytes, so shown and never compared."""
        found = {
            role: m["weights_sha256"]
            for role, m in (entry.get("models") or {}).items()
            if isinstance(m, dict) and m.get("weights_sha256")
        }
        if found:
            self.weights[key] = found

    def _read(self, store: ResultCache, key: str) -> dict[str, Any] | None:
        found = store.get(key)
        if isinstance(found, Corrupt) or (isinstance(found, dict) and not _valid(found)):
            path = found.path if isinstance(found, Corrupt) else store.path(key)
            reason = found.reason if isinstance(found, Corrupt) else "fields are missing"
            message = f"{path} is unusable ({reason})"
            if self.policy.strict_locked:
                self.report(
                    with_fix(message, f"restore it (git checkout -- {path.parent.name}) or rebuild it: {LOCK_COMMAND}")
                )
            else:
                self.progress(
                    f"{message}; {'executing its block again' if self.may_execute else 'its block is not executed'}"
                )
            return None
        return found


def _valid(entry: dict[str, Any]) -> bool:
    outcome = entry.get("outcome")
    return isinstance(outcome, dict) and outcome.get("status") == "ok" and isinstance(entry.get("page"), str)


def _place(entry: dict[str, Any]) -> tuple[Any, ...]:
    return entry.get("page"), entry.get("kind"), entry.get("index"), entry.get("role")
