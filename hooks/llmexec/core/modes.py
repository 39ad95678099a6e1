"""The execution mode's policy in one place: every other module asks it, none branches on the mode's name."""

from __future__ import annotations

from dataclasses import dataclass

from ..vocabulary import Mode

RENDERER_ONLY: tuple[Mode, ...] = ("locked", "preview")  # modes of an adapter that never starts a worker


@dataclass(frozen=True)
class Policy:
    """auto: lockfile, then cache, else execute and record.   refresh: execute everything, record.
    locked: lockfile only, never execute.   preview: lockfile only, never write; with preview_execute, blocks
    with no entry are executed for this build only (untrusted: no checkpoint, no training, no serving engine).
    verify: execute everything (or, with `only`, the entries changed since a git ref), write nothing, compare."""

    mode: Mode
    preview_execute: bool = False

    @property
    def may_execute(self) -> bool:
        return self.mode in ("auto", "refresh", "verify") or (self.mode == "preview" and self.preview_execute)

    def reads_stores(self, key: str, only: set[str] | None) -> bool:
        """Whether a stored outcome may stand for this key (refresh and verify execute again)."""
        return not (self.mode == "refresh" or (self.mode == "verify" and (only is None or key in only)))

    @property
    def reads_cache(self) -> bool:
        """The local cache after the lockfile: only auto (the others read the lockfile alone, or nothing)."""
        return self.mode == "auto"

    @property
    def records(self) -> bool:
        """Successes are written to the lockfile and the cache (and unused entries pruned after a complete build)."""
        return self.mode in ("auto", "refresh")

    @property
    def compares(self) -> bool:
        """Successes are compared with their lockfile entries, written nowhere; any drift fails the build."""
        return self.mode == "verify"

    @property
    def trusted(self) -> bool:
        """Whether executed code may be checkpointed and restored, tuned models trained, serving engines contacted.
        A preview runs a pull request's code: none of these."""
        return self.mode != "preview"

    @property
    def marks_only(self) -> bool:
        """A preview marks what it could not do (blocks not executed, claims that fail) on the page and in its
        report instead of failing the build: a pull request's site is published all the same."""
        return self.mode == "preview"

    @property
    def writes_report(self) -> bool:
        return self.mode in ("verify", "preview")

    @property
    def strict_locked(self) -> bool:
        """A lockfile entry that cannot be read is an error (locked), not a block to execute or mark."""
        return self.mode == "locked"


def renderer_only(mode: Mode) -> Mode:
    """The mode an adapter that never starts a worker runs under: its own if it is one of those, else locked."""
    return mode if mode in RENDERER_ONLY else "locked"
