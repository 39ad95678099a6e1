"""Sites whose base and instruct models are served by a real engine (llama.cpp's server): `make test-engine`."""

from __future__ import annotations

import html
import logging
import re
from importlib.metadata import version

import pytest
from mkdocs.exceptions import Abort

from conftest import outputs
from test_engine_real import SERVED, SERVERS, client, llama_server

pytestmark = pytest.mark.engine


def engine() -> str:
    """What the server reports (read when a test runs: a clone without `make engine` still collects this file)."""
    return f"llama-cpp-python {version('llama_cpp_python')}"


PAGE = (
    "# E\n\n```generate max_new_tokens=8\nThe capital of France is\n```\n\n"
    "```python exec\nfor token, p in base.next_tokens('The capital of France is', k=3):\n    print(repr(token), p)\n"
    "print(sorted(base.provenance().items()))\n```\n"
)


def on_engines(site, urls: dict[str, str], **changes) -> None:
    site.models = {
        role: {
            "endpoint": {
                "url": urls[role],
                "model": SERVED[role],
                "engine": engine(),
                "chat": role == "instruct",
                **changes,
            }
        }
        for role in SERVED
    }


def test_a_site_on_the_engine_shows_greedy_outputs_log_probabilities_and_provenance(site, servers, caplog):
    on_engines(site, servers)
    site.write("docs/index.md", PAGE)
    caplog.set_level(logging.INFO, logger="mkdocs")
    site.build()
    page = site.html()
    base, instruct, code = outputs(page)
    greedy = client(servers["base"], "base")
    greedy.extra = {"repeat_penalty": 1.0}
    expected = greedy.complete("The capital of France is", max_tokens=8, temperature=0.0, logprobs=3)
    assert base == expected.text  # the page shows what the engine answers, greedy
    assert instruct.strip()  # SmolLM2 through the server's chat template
    assert "the serving engine applies the model's chat template" in html.unescape(page)
    first = expected.tokens[0].top
    assert code.splitlines()[0].startswith(repr(first[0][0]))  # next_tokens: the server's top log-probabilities
    assert f"('engine version', '{version('llama_cpp_python')}')" in code and "('served model', 'gemma-3-270m')" in code
    assert f"gemma-3-270m on {engine()} (serving engine)" in page
    caplog.clear()
    site.build()
    assert re.search(r"llm_exec: 0 blocks executed, 3 from cache, 0 failed", caplog.text)  # sends nothing


@pytest.mark.parametrize(
    "change, environ, expected",
    [
        ({"model": "gemma-3-1b"}, {}, "does not serve 'gemma-3-1b'; it serves: gemma-3-270m"),
        ({"api_key_env": "LLM_EXEC_TEST_KEY"}, {}, "LLM_EXEC_TEST_KEY"),
        ({"engine": "llama-cpp-python 0.3.1"}, {}, "set endpoint.engine: 'llama-cpp-python "),
    ],
    ids=["wrong-model-name", "missing-key-variable", "other-engine-version"],
)
def test_a_misconfigured_endpoint_is_one_clear_error_on_the_block(
    site, servers, monkeypatch, caplog, change, environ, expected
):
    monkeypatch.delenv("LLM_EXEC_TEST_KEY", raising=False)
    on_engines(site, servers, **change)
    site.write("docs/index.md", "# F\n\n```generate model=base max_new_tokens=4\nhello\n```\n")
    caplog.set_level(logging.INFO, logger="mkdocs")
    with pytest.raises(Abort):
        site.build()
    assert "docs/index.md:3" in caplog.text and expected in caplog.text, caplog.text[-3000:]


def test_a_server_stopped_mid_build_fails_the_blocks_after_it_and_keeps_the_ones_before(site, gguf_folder, caplog):
    with llama_server(gguf_folder["base"], SERVED["base"]) as url:
        on_engines(site, {"base": url, "instruct": url})
        site.models.pop("instruct")
        site.models["instruct"] = {"endpoint": {"url": url, "model": SERVED["base"], "engine": engine()}}
        site.write(
            "docs/index.md",
            (
                "# S\n\n```python exec\nprint(base.generate('The capital of France is', max_new_tokens=4).text)\n"
                f"import os, signal, time\nos.kill({SERVERS[url].process.pid}, signal.SIGTERM)\ntime.sleep(2)\n```\n\n"
                "```python exec\nprint(base.generate('Once upon a time', max_new_tokens=4).text)\n```\n"
            ),
        )
        caplog.set_level(logging.INFO, logger="mkdocs")
        with pytest.raises(Abort):
            site.build()
    assert "docs/index.md:10" in caplog.text and "cannot connect" in caplog.text, caplog.text[-3000:]
    assert outputs(site.html())[0].strip()  # the block before the stop kept its output
