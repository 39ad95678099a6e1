"""Shared fixtures: tiny real models saved locally, throwaway sites in tmp_path, and build helpers."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HOOK = ROOT / "hooks" / "llm_exec.py"
try:
    from llmexec.core.protocol import CodeOutcome, CodeRequest, GenerateOutcome, GenerateRequest
    from llmexec.resolve.runner import WorkerRunner, use_runner
except ModuleNotFoundError as exc:  # the engine is an installed package (pyproject.toml), not a folder on sys.path
    raise pytest.UsageError(
        f"{exc}: the engine is not installed in this environment --> run `make setup` "
        "(it runs pip install --no-deps --no-build-isolation -e .)"
    ) from None
os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
# MkDocs' own theme stamps each page with the build time; a fixed one (MkDocs reads SOURCE_DATE_EPOCH, as for
# reproducible builds) lets tests compare whole pages between builds.
os.environ.setdefault("SOURCE_DATE_EPOCH", "1767225600")

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _save_tiny_model(folder: Path, *, chat: bool, seed: int) -> Path:
    """A randomly initialised 2-layer Llama with a word-level tokenizer: real transformers code, tiny weights."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = "the a cat dog sat on mat hello world good morning my friend translate to french bonjour <b> & < >".split()
    specials = ["<pad>", "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>", "user", "assistant", "system"]
    vocab = {tok: i for i, tok in enumerate(specials + words + [":", ".", ",", "!", "?"])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-models")
    return {
        "base": _save_tiny_model(root / "tiny-base", chat=False, seed=1),
        "instruct": _save_tiny_model(root / "tiny-instruct", chat=True, seed=2),
    }


class SharedWorker:
    """The real worker, started once for the in-process builds of the whole session (importing torch takes
    seconds): each build reconfigures it (project folder, models, limits; a role whose model changed is loaded
    again), and it is started again if a test kills it. Tests that count worker starts or model loads are marked
    `fresh_worker`."""

    def __init__(self) -> None:
        self.runner: WorkerRunner | None = None

    def __call__(self, settings, progress) -> SharedWorker.Borrowed:
        if self.runner is None:
            self.runner = WorkerRunner(settings, progress)
        self.runner.settings, self.runner.progress = settings, progress
        return SharedWorker.Borrowed(self.runner)

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()
            self.runner = None

    class Borrowed:
        """The shared runner, as the engine sees it: everything but close() goes through."""

        def __init__(self, runner: WorkerRunner) -> None:
            self._runner = runner

        def __getattr__(self, name: str):
            return getattr(self._runner, name)

        def close(self) -> None:
            pass


@pytest.fixture(scope="session")
def shared_worker() -> Iterator[SharedWorker]:
    worker = SharedWorker()
    yield worker
    worker.close()


@pytest.fixture(autouse=True)
def _worker_for_in_process_builds(request: pytest.FixtureRequest, shared_worker: SharedWorker) -> Iterator[None]:
    with use_runner(WorkerRunner if request.node.get_closest_marker("fresh_worker") else shared_worker):
        yield


# The files whose tests take longest (worker starts, trainings, whole-site builds), longest first: run first, so
# that the two test processes of `pytest -n 2` get the short tests last and both finish together.
SLOW_FIRST = (
    "test_preferences.py",
    "test_worker_builds.py",
    "test_tuning.py",
    "test_renderers.py",
    "test_tolerance.py",
    "test_batching.py",
    "test_verify.py",
    "test_preview_build.py",
    "test_endpoint_builds.py",
    "test_faults.py",
)
# Files whose tests share a module-scoped fixture that costs a build or more: their tests stay on one process.
ONE_PROCESS = ("tests/test_renderers.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))  # stable: file order within a rank


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`pytest -n 2` hands out one test at a time, in the order above. xdist's default (`--dist load`) first sends
    each process a quarter of the run in one contiguous chunk: the first process got the 48 slowest tests (every
    worker start and training of test_worker_builds and test_tuning), ran 206 s while the other ran the other 340
    tests in 187 s, then waited. Another `--dist` given on the command line is kept."""
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class OneTestAtATime(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if path in ONE_PROCESS else nodeid

    return OneTestAtATime(config, log)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """A test that fails while a llama.cpp server of the harness has died (`make test-engine`) fails with how the
    server ended and the tail of its log, not with what followed ("cannot connect (connection refused)")."""
    try:
        return (yield)
    except Exception as error:
        harness = sys.modules.get("test_engine_real")  # loaded only where engine tests run
        if deaths := (harness.dead_servers() if harness else []):
            raise pytest.fail.Exception("\n\n".join(deaths), pytrace=False) from error
        raise


@dataclass
class Site:
    """A throwaway MkDocs project: write pages, build it, read the HTML."""

    root: Path
    models: dict[str, dict[str, str]]
    llm_exec: dict
    yaml: list[str] = field(default_factory=list)  # more top-level mkdocs.yml lines (plugins, ...)
    # MkDocs' own theme: a build with it costs 0.05 s of CPU against Material's 0.22 s, about 40 s of the suite's
    # CPU over its in-process builds. What the hook writes is the same HTML in both; the site's own Material
    # builds are tested by test_site*, test_browser and the renderers' tests, and a test can ask for "material".
    theme: str = "mkdocs"

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def config(self) -> Path:
        settings = {"models": self.models, "cache_dir": ".cache/llm-exec", **self.llm_exec}
        text = "\n".join(
            [
                "site_name: test site",
                f"theme: {{name: {self.theme}}}",
                f"hooks: [{json.dumps(str(HOOK))}]",
                "markdown_extensions: [admonition, pymdownx.details, pymdownx.highlight, pymdownx.superfences,"
                " {pymdownx.tabbed: {alternate_style: true}}]",
                f"extra: {{llm_exec: {json.dumps(settings)}}}",
                *self.yaml,
            ]
        )
        return self.write("mkdocs.yml", text + "\n")

    def build(self, *, strict: bool = True) -> None:
        """An in-process build (so injected runners apply), hooks' startup and shutdown included."""
        from mkdocs.commands.build import build
        from mkdocs.config import load_config

        config = load_config(str(self.config()), strict=strict, site_dir=str(self.root / "site"))
        config.plugins.on_startup(command="build", dirty=False)
        try:
            build(config)
        finally:
            config.plugins.on_shutdown()

    def build_cli(
        self, *extra: str, env: dict[str, str] | None = None, prelude: str = ""
    ) -> subprocess.CompletedProcess[str]:
        """`mkdocs build` in a fresh interpreter; `prelude` runs first (e.g. to make imports fail)."""
        self.config()
        code = f"{prelude}\nimport sys\nfrom mkdocs.__main__ import cli\nsys.exit(cli())"
        return subprocess.run(
            [
                sys.executable,
                "-c",
                code,
                "build",
                "--strict",
                "-f",
                str(self.root / "mkdocs.yml"),
                "-d",
                str(self.root / "site"),
                *extra,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=600,
        )

    def html(self, page: str = "index.html") -> str:
        return (self.root / "site" / page).read_text(encoding="utf-8")


@pytest.fixture
def site(tmp_path: Path, tiny_models: dict[str, Path]) -> Iterator[Site]:
    models = {role: {"path": str(path), "label": f"tiny-{role} (test model)"} for role, path in tiny_models.items()}
    yield Site(tmp_path / "project", models, {"timeout": 60})


@pytest.fixture
def bare_site(tmp_path: Path) -> Iterator[Site]:
    """A site whose model folders hold no real model: only usable with an injected runner."""
    models = {}
    for role in ("base", "instruct"):
        folder = tmp_path / f"fake-{role}"
        folder.mkdir()
        (folder / "weights.txt").write_text(f"fake {role} v1")
        models[role] = {"path": str(folder), "label": f"fake-{role}"}
    yield Site(tmp_path / "project", models, {})


class FakeRunner:
    """Answers like a worker would, and counts what it was asked to run. Like the real one it reports library
    versions, the machine, tuned weights and the seconds spent loading models (each role once); with
    `checkpoints = True` it also writes a checkpoint after each block that has a key, and resumes from one."""

    instances: list[FakeRunner] = []
    checkpoints = False  # the default fake replays the whole page
    LOAD_SECONDS = 1.5  # what loading one model "takes"
    weights: dict[str, str] = {}  # role -> sha256 of weights "made on this machine" (tuned models)

    def __init__(self, settings, progress) -> None:
        self.code_calls: list[list[CodeRequest]] = []
        self.generate_calls: list[list[GenerateRequest]] = []
        self.resumes: list[int] = []  # the block each code call started from
        self.settings = settings
        self.versions = {"python": "3.fake", "torch": "0.fake", "transformers": "0.fake", "tokenizers": "0.fake"}
        self.machine = {"arch": "fake64", "vector_extensions": "", "torch_threads": 1}
        self.weights = dict(type(self).weights)
        self.load_seconds = 0.0
        self._loaded: set[str] = set()
        FakeRunner.instances.append(self)

    def begin_build(self, settings) -> None:
        self.settings = settings

    def _load(self, roles) -> None:
        for role in sorted(set(roles) - self._loaded):
            self._loaded.add(role)
            self.load_seconds += self.LOAD_SECONDS

    def run_code(self, page: str, blocks: Sequence[CodeRequest], resume: int = 0) -> tuple[int, list[CodeOutcome]]:
        self.code_calls.append(list(blocks))
        start = resume if self.checkpoints and resume and self._checkpoint(blocks[resume - 1].key).is_file() else 0
        self.resumes.append(start)
        outcomes = []
        for block in blocks[start:]:
            if "raise" in block.code:
                outcomes.append(
                    CodeOutcome(
                        "error",
                        output="partial\n",
                        error=f'  File "{block.filename}", line {block.first_line}, in <module>\nValueError: boom',
                    )
                )
                break
            self._load(["base"])
            outcomes.append(CodeOutcome("ok", output=f"ran: {block.code}\n", models_used=("base",)))
            if self.checkpoints and block.key:
                self._checkpoint(block.key).parent.mkdir(parents=True, exist_ok=True)
                self._checkpoint(block.key).write_text("state")
        return start, outcomes

    def _checkpoint(self, key: str) -> Path:
        from llmexec.core.files import checkpoint_path

        return checkpoint_path(self.settings.states_dir, key)

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateOutcome]:
        self.generate_calls.append(list(requests))
        self._load(r.model for r in requests)
        return [
            GenerateOutcome(
                "ok",
                input_text=f"[{r.model}] {r.request.prompt}",
                input_tokens=3,
                text=f"<script>alert('{r.model}')</script>",
                finish_reason="length",
                new_tokens=r.request.max_new_tokens,
            )
            for r in requests
        ]

    def close(self) -> None:
        pass


@pytest.fixture
def fake():
    FakeRunner.instances.clear()
    with use_runner(FakeRunner):
        yield FakeRunner.instances


def outputs(page: str) -> list[str]:
    """The texts of a built page's outputs (generations and code output), unescaped, in page order."""
    import html

    return [
        html.unescape(m) for m in re.findall(r'<pre class="llmx-(?:output|text)"><code>(.*?)</code></pre>', page, re.S)
    ]


def calls(instances) -> int:
    return sum(len(r.code_calls) + len(r.generate_calls) for r in instances)


def _copy_project(project: Path, *, lockfile: bool) -> Path:
    for name in ("docs", "snippets", "hooks", "tuning") + (("llm-exec.lock",) if lockfile else ()):
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "mkdocs.yml", project / "mkdocs.yml")
    return project


def _build_project(project: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env.pop("LLM_EXEC_MODE", None)  # the default mode (auto): execute what is missing
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", *extra],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done


@pytest.fixture(scope="session")
def project_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """This project's own site as a fresh clone builds it: from the committed lockfile, executing nothing (built
    once per session; the browser tests read it). `make test-site` builds it from nothing with the real models."""
    project = _copy_project(tmp_path_factory.mktemp("real") / "project", lockfile=True)
    built = _build_project(project)
    assert re.search(
        r"llm_exec: 0 blocks executed, \d+ from cache, 0 failed; \d+ claims checked, 0 false", built.stderr
    ), built.stderr[-3000:]
    return project, built


@pytest.fixture(scope="session")
def home_page_cold(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """This project's home page built from nothing with the real offline models (base, tuned: trained here unless
    the model cache has it, instruct); the other pages are replaced by a heading so that only it executes."""
    project = _copy_project(tmp_path_factory.mktemp("cold") / "project", lockfile=False)
    for page in (project / "docs").glob("*.md"):
        if page.name != "index.md":
            page.write_text(f"# {page.stem}\n\nNot part of this test.\n")
    (project / "docs" / "notebook.ipynb").write_text(
        json.dumps(
            {
                "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Notebook"]}],
                "metadata": {},
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )
    return project, _build_project(project)


@pytest.fixture(scope="session")
def gguf_folder(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`make test-engine`: each served preset's single GGUF file, its sha256 checked."""
    from test_engine_real import SERVED, preset_gguf

    folder = tmp_path_factory.mktemp("gguf")
    return {role: preset_gguf(role, folder) for role in SERVED}


@pytest.fixture(scope="session")
def servers(gguf_folder: dict[str, Path]) -> Iterator[dict[str, str]]:
    """`make test-engine`: one llama.cpp server per role, for the session: role -> API base."""
    from contextlib import ExitStack

    from test_engine_real import SERVED, llama_server

    with ExitStack() as stack:
        yield {role: stack.enter_context(llama_server(gguf_folder[role], SERVED[role])) for role in SERVED}
