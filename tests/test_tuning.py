"""A tuned model source: trained once from a recipe into the model cache, keyed by everything that decides it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mkdocs.exceptions import Abort

from llmexec.core.settings import load_settings

WORDS = ["hello", "good morning", "the cat sat", "translate to french", "my friend", "the dog sat on the mat"]
ANSWERS = ["bonjour", "good morning my friend", "on the mat", "bonjour my friend", "hello", "the cat"]


def write_data(path: Path, extra: str = "") -> Path:
    lines = [
        json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})
        for q, a in zip(WORDS, ANSWERS)
    ]
    lines.append(
        json.dumps(
            {
                "messages": [
                    {"role": "system", "content": "translate to french"},
                    {"role": "user", "content": "good morning"},
                    {"role": "assistant", "content": "bonjour"},
                ]
            }
        )
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def tune(**changes) -> dict:
    return {
        "tune": {
            "start": "base",
            "conversations": "tuning.jsonl",
            "steps": 3,
            "learning_rate": 1e-3,
            "batch_size": 2,
            "seed": 0,
            "method": "full",
            "template": "chatml",
            "max_tokens": 64,
            **changes,
        }
    }


@pytest.fixture
def tuned_site(site, tmp_path, monkeypatch):
    write_data(site.root / "tuning.jsonl")
    site.models["tuned"] = tune()
    site.llm_exec["model_cache_dir"] = str(tmp_path / "model-cache")
    return site


@pytest.fixture(scope="session")
def trained_once(tmp_path_factory, tiny_models) -> Path:
    """The tuned model of tune(), trained once per run (outside a build, as test_the_same_recipe... trains it) for
    the tests that need trained weights but do not test the training itself: it is keyed by the recipe, the data
    and the starting model, so the tuned_site of any test maps to this same folder name. Under `pytest -n 2` the
    two test processes share its model cache (the run's temporary folder): the first trains, the other waits for
    its lock and reuses it, as two builds do."""
    from llmexec.worker.tuned import tuned_folder

    root = tmp_path_factory.mktemp("trained-once")
    write_data(root / "tuning.jsonl")
    models = {role: {"path": str(path)} for role, path in tiny_models.items()} | {"tuned": tune()}
    spec = load_settings({"llm_exec": {"models": models}}, root).models["tuned"]
    run = tmp_path_factory.getbasetemp()
    cache = (run.parent if os.environ.get("PYTEST_XDIST_WORKER") else run) / "trained-once-model-cache"
    return tuned_folder(spec, cache, lambda line: None, 1, lambda start: Path(start.ref))


@pytest.fixture
def trained_site(tuned_site, trained_once):
    """A tuned_site whose model cache already holds the tuned weights (a copy of trained_once): nothing trains."""
    shutil.copytree(trained_once, Path(tuned_site.llm_exec["model_cache_dir"]) / trained_once.name)
    return tuned_site


PAGE = "# T\n\n```generate model=all max_new_tokens=4 id=q\ngood morning\n```\n"


def identity(root: Path, models: dict) -> str:
    return load_settings({"llm_exec": {"models": models}}, root).models["tuned"].identity


def test_the_identity_changes_with_every_recipe_field_and_with_the_data(tuned_site):
    root, models = tuned_site.root, {k: v for k, v in tuned_site.models.items() if k != "tuned"}
    first = identity(root, {**models, "tuned": tune()})
    assert identity(root, {**models, "tuned": tune()}) == first
    changed = [
        tune(steps=4),
        tune(learning_rate=2e-3),
        tune(batch_size=3),
        tune(seed=1),
        tune(method="layers"),
        tune(template="gemma"),
        tune(max_tokens=65),
        tune(start="instruct"),
    ]
    ids = [identity(root, {**models, "tuned": t}) for t in changed]
    assert first not in ids and len(set(ids)) == len(ids)
    write_data(
        root / "tuning.jsonl",
        extra=json.dumps(
            {"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "world"}]}
        )
        + "\n",
    )
    assert identity(root, {**models, "tuned": tune()}) != first
    other_base = {**models, "base": models["instruct"]}  # a different starting model
    assert identity(root, {**other_base, "tuned": tune()}) != first


def test_a_new_training_loop_version_is_another_identity(tuned_site, monkeypatch):
    """A change to the loop's arithmetic (TRAINER raised) trains again and makes the tuned entries stale."""
    from llmexec.core import recipes

    before = identity(tuned_site.root, tuned_site.models)
    monkeypatch.setattr(recipes, "TRAINER", recipes.TRAINER + 1)
    assert identity(tuned_site.root, tuned_site.models) != before


def test_trained_once_with_progress_then_reused_and_recorded_in_the_lockfile(tuned_site, caplog):
    caplog.set_level("INFO")
    tuned_site.write("docs/index.md", PAGE)
    tuned_site.build()
    assert "tuning model 'tuned' once: 3 steps on tuning.jsonl" in caplog.text
    assert (
        "tuned: step 1/3, loss " in caplog.text and "tuned: step 3/3, loss " in caplog.text and "s left" in caplog.text
    )
    html = tuned_site.html()
    assert html.count('class="llmx-model llmx-') == 3 and "llmx-cols-3" in html  # base, tuned, instruct
    assert html.index("llmx-base") < html.index("llmx-tuned") < html.index("llmx-instruct")
    entry = next(
        json.loads(p.read_text())
        for p in (tuned_site.root / "llm-exec.lock").glob("*.json")
        if json.loads(p.read_text())["role"] == "tuned"
    )
    model = entry["models"]["tuned"]
    assert model["identity"].startswith("tuned-sha256:") and len(model["weights_sha256"]) == 64
    folder = next((Path(tuned_site.llm_exec["model_cache_dir"])).glob("tuned-tuned-*"))
    record = json.loads((folder / "training.json").read_text())
    assert record["weights_sha256"] == model["weights_sha256"] and len(record["losses"]) == 3
    assert entry["outcome"]["input_text"].startswith("<|im_start|> user")  # the tuned tokenizer's chat template

    caplog.clear()
    for name in ("llm-exec.lock", ".cache"):
        shutil.rmtree(tuned_site.root / name)
    tuned_site.build()  # a cold build: the tuned model comes from the model cache
    assert "tuning model" not in caplog.text and "3 blocks executed" in caplog.text


def test_the_tuned_weights_hash_is_shown_under_outputs_from_the_lockfile_not_printed_in_them(trained_site):
    """The hash depends on the CPU that trained the weights: provenance under the output, never the output."""
    tuned_site = trained_site
    tuned_site.write(
        "docs/index.md",
        "# T\n\n```python exec\nprint(len(tuned.training['losses']))\n```\n\n"
        "```python exec output=markdown\nprint('Trained in', len(tuned.training['losses']), 'steps')\n```\n",
    )
    tuned_site.build()
    entries = [json.loads(p.read_text()) for p in (tuned_site.root / "llm-exec.lock").glob("*.json")]
    weights = {e["models"]["tuned"]["weights_sha256"] for e in entries}
    assert len(weights) == 1 and all(e["outcome"]["output"].strip() in ("3", "Trained in 3 steps") for e in entries)
    html, sha = tuned_site.html(), weights.pop()
    assert html.count(f"weights sha256 {sha[:16]}…") == 2  # the caption and the line under the Markdown output
    forged = "f" * 64  # the hash the lockfile records is the one shown (a locked build of another CPU's entries)
    for path in (tuned_site.root / "llm-exec.lock").glob("*.json"):
        path.write_text(path.read_text().replace(sha, forged))
    tuned_site.llm_exec["mode"] = "locked"
    tuned_site.build()
    assert tuned_site.html().count(f"weights sha256 {forged[:16]}…") == 2


def test_the_same_recipe_gives_the_same_weights(tuned_site, tmp_path, trained_once):
    """Trained twice into two empty model caches (the training process itself, without a build around it): the
    session's trained_once, from another project folder, and here."""
    from llmexec.worker.tuned import tuned_folder

    spec = load_settings({"llm_exec": {"models": tuned_site.models}}, tuned_site.root).models["tuned"]
    hashes = [json.loads((trained_once / "training.json").read_text())["weights_sha256"]]
    folder = tuned_folder(spec, tmp_path / "second", lambda line: None, 1, lambda start: Path(start.ref))
    hashes.append(json.loads((folder / "training.json").read_text())["weights_sha256"])
    assert folder != trained_once and folder.name == trained_once.name  # trained again, under the same recipe
    assert hashes[0] == hashes[1] and len(hashes[0]) == 64


def test_two_builds_at_once_train_once(tuned_site):
    """Two processes (as two builds would) ask for the same tuned model at once: one trains it, the other waits
    for the lock and reuses it."""
    spec = load_settings({"llm_exec": {"models": tuned_site.models}}, tuned_site.root).models["tuned"]
    cache = tuned_site.llm_exec["model_cache_dir"]
    ask = (
        "import json, sys\nfrom pathlib import Path\nfrom llmexec.core.models import ModelSpec\n"
        "from llmexec.worker.tuned import tuned_folder\n"
        f"spec = ModelSpec.from_json(json.loads({json.dumps(json.dumps(spec.to_json()))}))\n"
        f"print(tuned_folder(spec, Path({cache!r}), print, 1, lambda start: Path(start.ref)))\n"
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", ask], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(run.communicate(timeout=600), run.returncode) for run in runs]
    assert [code for _, code in results] == [0, 0], [err[-2000:] for (_, err), _ in results]
    outputs = [out for (out, _), _ in results]
    assert sum(out.count("tuning model 'tuned' once") for out in outputs) == 1
    assert len({out.strip().splitlines()[-1] for out in outputs}) == 1  # both got the same folder
    assert len(list(Path(cache).glob("tuned-tuned-*"))) == 1


def test_locked_and_preview_builds_never_train(tuned_site):
    tuned_site.write("docs/index.md", PAGE.replace("model=all", "model=tuned"))
    cache = Path(tuned_site.llm_exec["model_cache_dir"])
    locked = tuned_site.build_cli(env={"LLM_EXEC_MODE": "locked"})
    assert (
        locked.returncode == 1
        and "no lockfile entry matches this block, and locked mode never executes" in locked.stderr
    )
    preview = tuned_site.build_cli(env={"LLM_EXEC_MODE": "preview"})
    assert preview.returncode == 0 and "Not executed in this preview" in tuned_site.html()
    assert not list(cache.glob("tuned-*")) and "tuning model" not in locked.stderr + preview.stderr


USES_TUNED = (
    "\n[The base model answers]{check: q.base.new_tokens > 0}; [so does the tuned model]{check: "
    "q.tuned.new_tokens > 0}.\n\n```python exec id=r\nprint(tuned.generate('hello', max_new_tokens=2).finish_reason)\n```\n"
)


def test_a_preview_that_executes_never_trains_and_says_how_to_get_the_tuned_outputs(
    tuned_site, monkeypatch, tmp_path, caplog
):
    """LLM_EXEC_PREVIEW_EXECUTE=1 runs the blocks a pull request added, but a preview never trains: with the tuned
    weights missing from the model cache its generate column and its code block are marked not executed (the
    other models' columns run); once the weights are there, the same preview executes them."""
    caplog.set_level("INFO")
    tuned_site.write("docs/index.md", PAGE + USES_TUNED)
    cache = Path(tuned_site.llm_exec["model_cache_dir"])
    monkeypatch.setenv("LLM_EXEC_MODE", "preview")
    monkeypatch.setenv("LLM_EXEC_PREVIEW_EXECUTE", "1")
    monkeypatch.setenv("LLM_EXEC_REPORT", str(tmp_path / "report.md"))
    tuned_site.build()  # strict: a block left unexecuted is not an error
    assert not list(cache.glob("tuned-*")) and "tuning model" not in caplog.text
    html = tuned_site.html()
    reason = "The tuned model &#x27;tuned&#x27; is not trained on this machine, and a preview never trains one"
    assert html.count(reason) == 2 and html.count("make lock") >= 2  # its column, and the code block
    assert html.count("Executed for this preview only") == 2  # the base and instruct columns ran
    assert html.count("llmx-claim-true") == 1 and html.count("llmx-claim-unchecked") == 1  # the base's claim holds
    assert "the tuned answer of its block has no lockfile entry and was not executed" in caplog.text
    assert not (tuned_site.root / "llm-exec.lock").exists()
    assert "2 block(s) changed inputs and were not executed" in (tmp_path / "report.md").read_text()

    from llmexec.worker.tuned import tuned_path

    spec = load_settings({"llm_exec": {"models": tuned_site.models}}, tuned_site.root).models["tuned"]
    shutil.copytree(tuned_site.models["base"]["path"], tuned_path(spec, cache))  # as if a trusted build trained it
    caplog.clear()
    tuned_site.build()
    html = tuned_site.html()
    assert "not trained on this machine" not in html and "tuning model" not in caplog.text
    assert html.count("llmx-claim-true") == 2
    assert html.count("Executed for this preview only") == 4  # three columns and the code block


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"start": "nothing"}, "extra.llm_exec.models.tuned.tune.start: 'nothing' is not a configured model"),
        ({"conversations": "missing.jsonl"}, "missing.jsonl does not exist"),
        ({"conversations": "broken.jsonl"}, "broken.jsonl:3: not a conversation (turns must alternate user, assistant"),
        ({"conversations": "bad-json.jsonl"}, "bad-json.jsonl:2: not a conversation (Expecting"),
    ],
)
def test_a_broken_recipe_stops_the_build_naming_the_file_and_line(tuned_site, change, expected):
    good = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]})
    (tuned_site.root / "broken.jsonl").write_text(
        f"{good}\n{good}\n"
        + json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]})
        + "\n"
    )
    (tuned_site.root / "bad-json.jsonl").write_text(f"{good}\n{{not json\n")
    tuned_site.models["tuned"] = tune(**change)
    tuned_site.write("docs/index.md", PAGE)
    result = tuned_site.build_cli()
    assert result.returncode == 1 and expected in result.stderr and "Traceback" not in result.stderr


def test_a_turn_template_the_starting_tokenizer_lacks_is_a_clear_error(tuned_site, caplog):
    tuned_site.models["tuned"] = tune(template="gemma")  # the tiny tokenizer has no <end_of_turn>
    tuned_site.write("docs/index.md", PAGE.replace("model=all", "model=tuned"))
    with pytest.raises(Abort):
        tuned_site.build()  # in process, on the tests' shared worker (a new one would import torch again)
    assert "has no token '<end_of_turn>', so the 'gemma' turn template cannot be used with it" in caplog.text
    assert "Traceback" not in caplog.text


def test_the_rendered_conversation_matches_the_tuned_chat_template_and_masks_only_replies(tiny_models):
    from transformers import AutoTokenizer

    from llmexec.core.templates import TEMPLATES
    from llmexec.vocabulary import TURN_FORMATS
    from llmexec.worker.tune import encode, render

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["instruct"])
    turns = [("system", "translate to french"), ("user", "good morning"), ("assistant", "bonjour my friend")]
    assert tuple(TEMPLATES) == TURN_FORMATS  # every turn format the settings offer is laid out, and only those
    for name in TURN_FORMATS:
        tokenizer.chat_template = TEMPLATES[name].jinja
        text, _ = render(TEMPLATES[name], turns)  # without <bos>: encode() adds it as a token, as the model sees it
        bos = tokenizer.bos_token if TEMPLATES[name].bos else ""
        assert bos + text == tokenizer.apply_chat_template(
            [{"role": r, "content": c} for r, c in turns], tokenize=False
        )
    tokenizer.chat_template = TEMPLATES["chatml"].jinja
    ids, labels = encode(tokenizer, TEMPLATES["chatml"], turns, 64)
    trained = tokenizer.decode([i for i, label in zip(ids, labels) if label != -100])
    assert trained == "bonjour my friend <|im_end|>"


def _normalized(text: str) -> str:
    return " ".join("".join(c.lower() if c.isalnum() else " " for c in text).split())


def page_prompts() -> set[str]:
    """Every prompt the site's pages give a model: generate blocks, and the strings in code blocks, snippets and
    notebook cells that are at least three words long."""
    import ast

    from conftest import ROOT
    from llmexec.plan.blocks import Block, find_blocks

    prompts, sources = set(), [p.read_text() for p in (ROOT / "snippets").glob("*.py")]
    for page in (ROOT / "docs").glob("*.md"):
        for block in find_blocks(
            page.read_text(), page=page.name, line_offset=0, project_dir=ROOT, roles=("base", "tuned", "instruct")
        ):
            if isinstance(block, Block):
                (prompts.add(block.source) if block.kind == "generate" else sources.append(block.source))
    for notebook in (ROOT / "docs").glob("*.ipynb"):
        sources += ["".join(c["source"]) for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    for source in sources:
        prompts |= {
            n.value
            for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and len(n.value.split()) >= 3
        }
    return {p for p in map(_normalized, prompts) if len(p.split()) >= 3}


def leaked(data: Path, prompts: set[str]) -> list[str]:
    found = []
    for number, line in enumerate(data.read_text().splitlines(), 1):
        texts = [_normalized(m["content"]) for m in json.loads(line)["messages"]]
        found += [f"line {number}: {p!r}" for p in prompts for t in texts if p in t]
    return found


def test_no_prompt_of_the_pages_is_in_the_training_data(tmp_path):
    from conftest import ROOT

    data, prompts = ROOT / "tuning" / "conversations.jsonl", page_prompts()
    assert len(prompts) > 40 and len(data.read_text().splitlines()) >= 300
    assert leaked(data, prompts) == []
    planted = tmp_path / "planted.jsonl"  # the check can fail: a page prompt, re-punctuated, is found
    planted.write_text(
        data.read_text()
        + json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "what is the capital  of FRANCE"},
                    {"role": "assistant", "content": "Paris."},
                ]
            }
        )
        + "\n"
    )
    assert leaked(planted, prompts) == [
        f"line {len(data.read_text().splitlines()) + 1}: 'what is the capital of france'"
    ]


NO_TORCH = """
import builtins, importlib.metadata as md
_real_import, _real_version = builtins.__import__, md.version
def _blocked(name, *args, **kwargs):
    if name.split(".")[0] in ("torch", "transformers"):
        raise ModuleNotFoundError(f"No module named {name!r} (not installed: the site-only environment)")
    return _real_import(name, *args, **kwargs)
def _version(name):
    if name in ("torch", "transformers"):
        raise md.PackageNotFoundError(name)
    return _real_version(name)
builtins.__import__, md.version = _blocked, _version
"""


def test_a_locked_build_needs_no_torch_to_key_the_tuned_model(trained_site):
    tuned_site = trained_site
    tuned_site.write("docs/index.md", PAGE)
    tuned_site.build()  # in process, on the tests' shared worker: locks (the weights are in its model cache)
    locked = tuned_site.build_cli(env={"LLM_EXEC_MODE": "locked"}, prelude=NO_TORCH)
    assert locked.returncode == 0, locked.stderr[-3000:]
    assert "0 blocks executed, 3 from cache" in locked.stderr


def test_other_library_versions_train_into_another_folder_with_the_same_keys(tuned_site, monkeypatch):
    from llmexec.core import recipes
    from llmexec.worker.tuned import tuned_path

    spec = load_settings({"llm_exec": {"models": tuned_site.models}}, tuned_site.root).models["tuned"]
    before = (spec.identity, tuned_path(spec, Path("/cache")))
    monkeypatch.setattr(recipes, "library_versions", lambda: {"torch": "9.9", "transformers": "9.9"})
    after = (spec.identity, tuned_path(spec, Path("/cache")))
    assert after[0] == before[0] and after[1] != before[1]
