"""Worker side: the zygote holds the configuration and the loaded models, and hands each job to a forked child."""

from __future__ import annotations

import ast
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from ..core.models import ModelSpec
from ..core.protocol import CodeOutcome, CodeRequest, GenerateOutcome, GenerateRequest, dumps
from ..core.ranking import RankOutcome, RankRequest
from ..errors import NotTrainedHere
from .batches import generate_key, in_batch_order, rank_key
from .code import run_code_child
from .generate import run_generate_child
from .host import Share
from .lanes import in_lanes
from .ranks import run_rank_child
from .supervise import run_in_children


class Zygote:
    """Loads models in this process (never running them here: forked children would hang in OpenMP)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.specs: dict[str, ModelSpec] = {}
        self.model_cache = Path()
        self.threads = 1
        self.batch_size = 1
        self.memory_limit = 4.0  # GB a child may grow by (resident, anonymous) before it is killed
        self.states = Path()
        self.contact_engines = True
        self.train = True  # False in preview builds: a tuned model that is not in the model cache is not trained
        self.keys: dict[str, str] = {}
        self.loaded: dict[str, Any] = {}
        self.failed: dict[str, Exception] = {}  # a role's load failure, raised again for every block that needs it
        self.share: Share | None = None  # while a generate job's lanes run at once (lanes.py)
        self._channel = threading.Lock()  # lanes' threads write the protocol channel and fork: one at a time

    def send(self, **message: Any) -> None:
        with self._channel:
            self.out.write(dumps(message))
            self.out.flush()

    def fork(self) -> int:
        with self._channel:  # a child inherits no half-written line; in it, this lock is released on the way out
            return os.fork()

    def log(self, text: str, **extra: Any) -> None:
        self.send(op="log", message=text, **extra)

    def configure(self, message: dict[str, Any]) -> None:
        specs = {role: ModelSpec.from_json(spec) for role, spec in message["models"].items()}
        for role in [r for r in self.loaded if specs.get(r) != self.specs.get(r)]:
            del self.loaded[role]  # another model under this role now: load it again when asked
        self.specs = specs
        self.model_cache = Path(message["model_cache"])
        self.threads = int(message["threads"])
        self.batch_size = int(message.get("batch_size", 1))
        self.memory_limit = float(message.get("memory_limit", 4.0))
        self.states = Path(message["states"])
        if message.get("project_dir"):
            self._move_to(Path(message["project_dir"]))
        self.contact_engines = bool(message.get("contact_engines", True))  # preview builds never contact one
        self.train = bool(message.get("train", True))  # nor train a tuned model
        keys = dict(message.get("keys", {}))  # endpoint API keys, from the build's environment
        if keys != self.keys or not self.contact_engines:  # preview: not even through an earlier build's connection
            self.loaded = {r: m for r, m in self.loaded.items() if self.specs[r].kind != "endpoint"}
        self.keys = keys
        self.failed.clear()  # a new build tries again models that failed to load before

    def _move_to(self, folder: Path) -> None:
        """Snippets open files and import modules relative to the folder of mkdocs.yml: follow the project."""
        old = os.getcwd()
        if str(folder) != old:
            os.chdir(folder)
            sys.path[:] = [str(folder) if entry == old else entry for entry in sys.path]

    def model(self, role: str):
        """The loaded model for a role; a load failure is remembered and raised as ModelUnavailable (NotTrainedHere
        for a tuned model a preview may not train: its blocks are marked not executed, not failed)."""
        from .models import ModelUnavailable

        if role in self.failed:
            failure = self.failed[role]
            raise type(failure)(str(failure))
        if role not in self.loaded:
            spec = self.specs[role]
            self.log(f"loading {role} model: {spec.artifact}")
            started = time.perf_counter()
            try:
                self.loaded[role] = self._load(spec)
            except NotTrainedHere as exc:
                self.log(
                    f"{role} model: not trained on this machine, and a preview never trains: its blocks are "
                    "marked not executed"
                )
                self.failed[role] = exc
                raise
            except Exception as exc:  # every load failure becomes a message on the blocks that needed it
                self.failed[role] = ModelUnavailable(f"model '{role}' could not be loaded: {exc}")
                raise self.failed[role] from None
            weights = self.loaded[role].training.get("weights_sha256", "")
            self.log(
                f"loaded {role} model in {time.perf_counter() - started:.1f} s",
                load_seconds=time.perf_counter() - started,
                weights={role: weights} if weights else {},
            )
        return self.loaded[role]

    def _load(self, spec: ModelSpec) -> Any:
        """A local model, or one on a serving engine, connected to and checked (the same snippet API)."""
        if spec.kind == "endpoint":
            from .endpoint_model import connect

            return connect(spec, self.contact_engines, self.keys)
        from .models import load_model

        return load_model(spec, self.model_cache, self.log, self.threads, self.train)

    def preload(self, roles: set[str]) -> None:
        from .models import ModelUnavailable

        for role in sorted(roles & set(self.specs)):
            try:
                self.model(role)
            except (ModelUnavailable, NotTrainedHere):
                pass  # reported by the block that uses it

    def run_code(self, page: str, blocks: list[CodeRequest], resume: int = 0) -> list[CodeOutcome]:
        names = set()
        for block in blocks:
            try:
                names |= {n.id for n in ast.walk(ast.parse(block.code)) if isinstance(n, ast.Name)}
            except SyntaxError:
                pass  # the child reports it with its page line
        self.preload(names | (set(self.specs) if "models" in names else set()))
        from . import models  # noqa: F401 - imported once here, not again in each page's child (0.3 s of CPU each)

        return run_in_children(
            self,
            blocks,
            lambda rest, report: run_code_child(self, rest, report, resume),
            CodeOutcome,
            independent=False,
        )

    def generate(self, requests: list[GenerateRequest]) -> list[GenerateOutcome]:
        """Requests that may share a batch are brought together here (the build sends them in page order), each
        local model's in its own lane (lanes.py), and the outcomes go back in the order they were asked for."""
        self.preload({r.model for r in requests})
        supervised = self._supervised(run_generate_child, GenerateOutcome)
        return in_batch_order(requests, generate_key, lambda ordered, order: in_lanes(self, ordered, order, supervised))

    def rank(self, requests: list[RankRequest]) -> list[RankOutcome]:
        """Recorded answers scored under a model (token-level views), in the order asked."""
        self.preload({r.model for r in requests})
        return in_batch_order(requests, rank_key, self._supervised(run_rank_child, RankOutcome))

    def _supervised(self, child: Callable[..., None], outcome: type) -> Callable[[list[Any], list[int]], list[Any]]:
        """Independent requests for models, sorted so that batches form, run in forked children by `child`:
        (the sorted requests, each one's index as asked) -> their outcomes."""
        return lambda ordered, order: run_in_children(
            self, ordered, lambda rest, report: child(self, rest, report), outcome, independent=True, indices=order
        )
