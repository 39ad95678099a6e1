"""The runner boundary of one build: started on first use, failures made outcomes, its time split, provenance."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from ..core.protocol import Runner
from ..core.settings import Settings
from .recorder import Recorder, Stats
from .store import Store


class Boundary:
    """One build's calls into the runner; the runner (and its loaded models) outlives it, for `serve`."""

    def __init__(self, factory: Callable[[], Runner], stats: Stats) -> None:
        self._factory, self.stats = factory, stats
        self.runner: Runner | None = None  # set on the first call: a build with nothing to execute never starts one
        self._loaded_before = 0.0  # the runner's seconds of model loading when this build first called it

    def start(self) -> Runner:
        if self.runner is None:
            self.runner = self._factory()
            self._loaded_before = getattr(self.runner, "load_seconds", 0.0)  # loaded by earlier builds (`serve`)
        return self.runner

    def call(self, kind: str, call: Callable[[], list[Any]], outcome_type: type) -> list[Any]:
        """Whatever the runner raises becomes a failed outcome with the message, not a traceback. Also splits the
        wall time between model loading and `kind`."""
        started, loaded = time.perf_counter(), getattr(self.runner, "load_seconds", None)
        try:
            return call()
        except Exception as exc:  # reported on the page and in the log
            return [outcome_type(status="crashed", error=str(exc) or type(exc).__name__)]
        finally:  # a runner kept from the build before (`serve`) counts only the models loaded since this build began
            loaded = self._loaded_before if loaded is None else loaded
            loading = getattr(self.runner, "load_seconds", loaded) - loaded
            self.stats.loading += loading
            setattr(self.stats, kind, getattr(self.stats, kind) + time.perf_counter() - started - loading)

    def provenance(self) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
        """Library versions, the machine, and tuned weights: recorded with every entry the runner produced."""
        versions, machine, weights = (
            dict(getattr(self.runner, name, {}) or {}) for name in ("versions", "machine", "weights")
        )
        return versions, machine, weights


class Resolving(Protocol):
    """What the resolver's helpers (resolve/code.py, resolve/ranks.py) use of it: its store, recorder and boundary."""

    settings: Settings
    store: Store
    recorder: Recorder
    boundary: Boundary
    progress: Callable[[str], None]
    report: Callable[[str], None]
