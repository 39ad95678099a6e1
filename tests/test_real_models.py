"""The real offline default models: the home page built from nothing, batching, tuning (`make test-models`, CI)."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.real_models


def _blocks(page: str, css: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(rf'<pre class="{css}"><code>(.*?)</code></pre>', page, re.S)]


def test_home_page_shows_the_three_real_models_with_provenance(home_page_cold):
    project, _ = home_page_cold
    page = (project / "site" / "index.html").read_text()
    assert "google/gemma-3-270m (GGUF Q4_K_M, sha256 a5fd3b62230a…)" in page
    assert "HuggingFaceTB/SmolLM2-135M-Instruct (GGUF Q4_1, sha256 b179c9523d0e…)" in page
    assert "google/gemma-3-270m (GGUF Q4_K_M, sha256 a5fd3b62230a…) + 40 steps of instruction tuning" in page
    base_input, formatted_input, tuned_input, instruct_input = _blocks(page, "llmx-input")[:4]
    assert base_input == "<bos>Translate to French: Good morning, my friend."  # raw text, plus Gemma's BOS
    assert tuned_input == (
        "<bos><start_of_turn>user\nTranslate to French: Good morning, my friend.<end_of_turn>\n<start_of_turn>model\n"
    )  # the same base model, in the turn format it was tuned on
    assert formatted_input == tuned_input  # base:tuned-format: the base weights given exactly the tuned model's text
    assert instruct_input.startswith("<|im_start|>system\n") and instruct_input.endswith("<|im_start|>assistant\n")
    assert "<|im_start|>user\nTranslate to French: Good morning, my friend.<|im_end|>" in instruct_input
    assert all(text.strip() for text in _blocks(page, "llmx-output"))


def test_a_second_build_executes_nothing_and_imports_no_torch(home_page_cold):
    project, _ = home_page_cold
    blocker = (
        "import sys\nclass B:\n def find_spec(self, n, p=None, t=None):\n"
        "  if n.split('.')[0] in ('torch', 'transformers'): raise ImportError(n + ' blocked')\n"
        "sys.meta_path.insert(0, B())\nfrom mkdocs.__main__ import cli\nsys.exit(cli())"
    )
    warm = subprocess.run(
        [sys.executable, "-c", blocker, "build", "--strict"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=600,
    )
    assert warm.returncode == 0, warm.stderr[-3000:]
    assert re.search(r"0 blocks executed, \d+ from cache, 0 failed", warm.stderr)


def test_no_page_loads_anything_from_another_host(project_site):
    """Fonts, scripts, styles and images all come from the site itself: it works with no network."""
    from html.parser import HTMLParser

    class Loads(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.external: list[str] = []

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            url = (
                a.get("src")
                if tag in ("script", "img", "iframe", "audio", "video", "source")
                else a.get("href")
                if tag == "link"
                else None
            )
            if url and re.match(r"^(https?:)?//", url):
                self.external.append(f"<{tag}> {url}")

    project, _ = project_site
    pages = list((project / "site").rglob("*.html"))
    assert pages
    for path in pages:
        parser = Loads()
        parser.feed(path.read_text())
        assert parser.external == [], f"{path.relative_to(project)} loads {parser.external}"


def test_batching_never_changes_what_the_real_models_generate(tmp_path):
    """Left-padded fp32 batches give each prompt the tokens it gets alone, on both real models (in process: the
    tests' shared worker keeps the models loaded across the two builds; the batch size is sent with each one)."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    from conftest import HOOK

    prompts = [
        "The capital of France is",
        "Write a haiku about autumn.",
        "List three colours:",
        "Translate to German: Thank you very much for your help.",
        "Q: What is 12 times 12?\nA:",
        "Once upon a time",
    ]
    page = "# B\n\n" + "\n".join(f"```generate max_new_tokens=24\n{p}\n```\n" for p in prompts)
    outputs = []
    for batch_size in (32, 1):  # the default, and one prompt at a time
        project = tmp_path / f"batch-{batch_size}"
        (project / "docs").mkdir(parents=True)
        (project / "docs" / "index.md").write_text(page)
        (project / "mkdocs.yml").write_text(
            f"site_name: b\nhooks: [{HOOK}]\nmarkdown_extensions: [pymdownx.superfences]\n"
            f"extra: {{llm_exec: {{batch_size: {batch_size}}}}}\n"
        )
        config = load_config(str(project / "mkdocs.yml"), strict=True, site_dir=str(project / "site"))
        config.plugins.on_startup(command="build", dirty=False)
        try:
            build(config)
        finally:
            config.plugins.on_shutdown()
        outputs.append(_blocks((project / "site" / "index.html").read_text(), "llmx-output"))
    assert len(outputs[0]) == 2 * len(prompts)
    assert outputs[0] == outputs[1]


def test_the_tuned_model_ends_its_turn_on_held_out_prompts_more_often_than_the_base_model(home_page_cold):
    """The real recipe (trained by the home page's cold build, or reused from the model cache), on the pages' own
    requests, none of which is in its training data."""
    from mkdocs.config import load_config

    from conftest import ROOT
    from llmexec.core.request import Request
    from llmexec.core.settings import load_settings
    from llmexec.plan.blocks import Block, find_blocks
    from llmexec.worker.models import load_model

    project, _ = home_page_cold
    settings = load_settings(load_config(str(project / "mkdocs.yml")).extra, project)
    prompts = list(
        dict.fromkeys(
            b.source
            for page in sorted((ROOT / "docs").glob("*.md"))
            for b in find_blocks(
                page.read_text(), page=page.name, line_offset=0, project_dir=ROOT, roles=tuple(settings.models)
            )
            if isinstance(b, Block) and b.kind == "generate" and b.request.template != "raw" and not b.request.prefill
        )
    )
    assert len(prompts) >= 10
    ended = {}
    for role in ("base", "tuned"):
        model = load_model(settings.models[role], settings.model_cache_dir, print)
        results = model.generate_batch([Request(p) for p in prompts])
        ended[role] = sum(r.finish_reason == "eos" for r in results)
    assert ended["tuned"] > ended["base"] and ended["tuned"] >= len(prompts) / 2, ended
    from llmexec.worker.tuned import tuned_path

    record = json.loads((tuned_path(settings.models["tuned"], settings.model_cache_dir) / "training.json").read_text())
    assert record["losses"][-1] < record["losses"][0]
