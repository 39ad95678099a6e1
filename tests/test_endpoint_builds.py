"""Models on a serving engine (`endpoint:`), in real builds against the fake OpenAI-compatible server."""

from __future__ import annotations

import html
import json
import logging

import pytest
from mkdocs.exceptions import Abort

from conftest import outputs
from fake_openai import FakeOpenAI, Fault

PAGE = (
    "# E\n\n```generate max_new_tokens=8\nThe capital of France is\n```\n\n"
    "```python exec\nprint(base.next_tokens('The capital of France is', k=2))\n"
    "print(instruct.chat('Name a city.', max_new_tokens=5).text)\n"
    "print(sorted(base.provenance().items()))\n```\n"
)


@pytest.fixture
def served():
    with FakeOpenAI(models=("fake/base", "fake/chat"), engine="vllm", version="0.9.2", key="sk-secret-123") as fake:
        yield fake


def on_engine(site, fake: FakeOpenAI, **changes) -> None:
    common = {"url": fake.url, "engine": "vllm 0.9.2", "api_key_env": "FAKE_KEY", "concurrency": 2}
    site.models = {
        "base": {"endpoint": {**common, "model": "fake/base", **changes}},
        "instruct": {"endpoint": {**common, "model": "fake/chat", "chat": True, **changes}},
    }


def test_blocks_and_snippets_run_on_the_engine_and_a_rebuild_sends_nothing(site, served, monkeypatch):
    monkeypatch.setenv("FAKE_KEY", "sk-secret-123")
    on_engine(site, served)
    site.write("docs/index.md", PAGE)
    site.build()
    page = site.html()
    base, instruct, code = outputs(page)
    assert base == instruct == "Paris is the capital of France."  # the fake's words, through each route
    assert "fake/base on vllm 0.9.2 (serving engine)" in page and "fake/chat on vllm 0.9.2 (serving engine)" in page
    raw = [r for r in served.requests if r.path == "/v1/completions"]
    chat = [r for r in served.requests if r.path == "/v1/chat/completions"]
    assert raw[0].body["prompt"] == "The capital of France is" and raw[0].body["temperature"] == 0
    assert chat[0].body["messages"] == [{"role": "user", "content": "The capital of France is"}]
    assert (
        "the serving engine applies the model&#x27;s chat template" in page
        or "the serving engine applies the model's chat template" in html.unescape(page)
    )
    assert "[('Paris', " in code and "('engine', 'vllm')" in code and "('served model', 'fake/base')" in code
    assert all(
        r.headers.get("Authorization") == "Bearer sk-secret-123" for r in served.requests if r.path.startswith("/v1")
    )
    before = len(served.requests)
    site.build()
    assert len(served.requests) == before  # every result came from the lockfile
    entries = [p.read_text() for p in (site.root / "llm-exec.lock").glob("*.json")]
    assert any('"endpoint:vllm 0.9.2/fake/base@"' in e for e in entries)
    assert not any(served.url in e or "127.0.0.1" in e or "sk-secret" in e for e in entries)


def test_a_site_s_prompts_go_out_concurrently_but_never_more_than_the_limit(site, served, monkeypatch):
    monkeypatch.setenv("FAKE_KEY", "sk-secret-123")
    served.delay = 0.3
    on_engine(site, served, concurrency=3)
    site.write(
        "docs/index.md",
        "# C\n\n" + "".join(f"```generate model=base max_new_tokens=4\nPrompt {i}\n```\n\n" for i in range(8)),
    )
    site.build()
    assert len(outputs(site.html())) == 8
    assert served.max_in_flight == 3


@pytest.mark.parametrize(
    "change, environ, expected",
    [
        ({"url": "http://127.0.0.1:9/v1"}, {"FAKE_KEY": "sk-secret-123"}, "127.0.0.1:9"),
        ({"model": "fake/other"}, {"FAKE_KEY": "sk-secret-123"}, "fake/base"),  # names what is served
        ({}, {}, "FAKE_KEY"),
        ({"engine": "vllm 0.8.0"}, {"FAKE_KEY": "sk-secret-123"}, "set endpoint.engine: 'vllm 0.9.2'"),
    ],
    ids=["unreachable", "model-not-served", "missing-key-variable", "engine-changed"],
)
def test_engine_failures_are_one_clear_error_on_the_block(site, served, monkeypatch, caplog, change, environ, expected):
    monkeypatch.delenv("FAKE_KEY", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    on_engine(site, served, **change)
    site.write("docs/index.md", "# F\n\n```generate model=base max_new_tokens=4\nhello\n```\n")
    caplog.set_level(logging.INFO, logger="mkdocs")
    with pytest.raises(Abort):
        site.build()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("docs/index.md:3" in e and expected in e for e in errors), errors
    assert "sk-secret" not in caplog.text and "Traceback" not in caplog.text


def test_a_server_error_is_retried_and_a_missing_log_probability_is_named(site, served, monkeypatch, caplog):
    monkeypatch.setenv("FAKE_KEY", "sk-secret-123")
    on_engine(site, served, retries=2)
    served.fail("/v1/completions", Fault(status=503), Fault(omit_logprobs=True))
    site.write("docs/index.md", "# R\n\n```python exec\nprint(base.next_tokens('The capital', k=2))\n```\n")
    caplog.set_level(logging.INFO, logger="mkdocs")
    with pytest.raises(Abort):
        site.build()
    assert served.count("/v1/completions") == 2  # the 503, then an answer without log-probabilities
    assert "docs/index.md:3" in caplog.text and "did not return log-probabilities" in caplog.text
    assert (
        'File "docs/index.md", line 4' in caplog.text and "endpoint_model.py" not in caplog.text
    )  # the snippet's line
    served.requests.clear()
    site.build()  # the next try gets a full answer
    assert "[('Paris', " in outputs(site.html())[0]


def test_locked_and_preview_builds_never_contact_the_engine(site, served, monkeypatch, caplog):
    monkeypatch.setenv("FAKE_KEY", "sk-secret-123")
    on_engine(site, served)
    site.write("docs/index.md", "# L\n\n```generate model=base max_new_tokens=4\nhello\n```\n")
    site.build()
    served.requests.clear()
    site.llm_exec["mode"] = "locked"
    site.build()
    assert outputs(site.html()) == ["Paris is the capital"]
    site.llm_exec["mode"] = "preview"
    monkeypatch.setenv("LLM_EXEC_PREVIEW_EXECUTE", "1")
    site.write("docs/index.md", "# L\n\n```generate model=base max_new_tokens=4\nhello again\n```\n")
    caplog.set_level(logging.INFO, logger="mkdocs")
    site.build(strict=False)
    assert served.requests == []
    assert "preview builds never contact" in caplog.text


def test_the_configuration_names_each_endpoint_problem(site, tmp_path):
    from llmexec.core.settings import load_settings
    from llmexec.errors import ConfigError

    bad = {
        "models": {
            "base": {"endpoint": {"url": "127.0.0.1:8000", "api_key_env": "sk-abc123", "extra": 1}},
            "instruct": {
                "preset": "smollm2-135m-instruct",
                "endpoint": {"url": "http://h/v1", "model": "m", "engine": "vllm 1"},
            },
        }
    }
    with pytest.raises(ConfigError) as raised:
        load_settings({"llm_exec": bad}, tmp_path)
    message = str(raised.value)
    for expected in (
        "models.base.endpoint.model: required",
        "models.base.endpoint.engine: required",
        "models.base.endpoint.extra: unknown key",
        "expected http(s)://host:port/v1",
        "the NAME of an environment variable",
        "give exactly one of preset, hub, path, endpoint",
    ):
        assert expected in message
    assert "sk-abc123" not in message
    spec = load_settings(
        {"llm_exec": {"models": {"base": {"endpoint": {"url": "http://a:1/v1", "model": "m", "engine": "vllm 1"}}}}},
        tmp_path,
    ).models["base"]
    moved = load_settings(
        {"llm_exec": {"models": {"base": {"endpoint": {"url": "http://b:2/v1", "model": "m", "engine": "vllm 1"}}}}},
        tmp_path,
    ).models["base"]
    assert spec.identity == moved.identity == "endpoint:vllm 1/m@"  # the URL is not part of what keys outputs
    assert json.loads(spec.endpoint)["url"] == "http://a:1/v1"


def test_verify_tells_an_engine_that_answered_differently_from_an_input_that_changed(site, served, monkeypatch, caplog):
    monkeypatch.setenv("FAKE_KEY", "sk-secret-123")
    on_engine(site, served)
    site.write("docs/index.md", "# V\n\n```generate model=base max_new_tokens=4\nThe capital of France is\n```\n")
    site.build()
    monkeypatch.setenv("LLM_EXEC_MODE", "verify")
    caplog.set_level(logging.INFO, logger="mkdocs")
    served.reply = lambda prompt: ("Lyon", ".")
    with pytest.raises(Abort):
        site.build()
    assert "docs/index.md:3" in caplog.text and "the engine answered differently to the same input" in caplog.text
    served.reply = lambda prompt: ("Paris", " is", " the", " capital")
    entry = next((site.root / "llm-exec.lock").glob("*.json"))
    data = json.loads(entry.read_text())
    data["outcome"]["input_tokens"] += 3  # as if the server had laid the same request out in other tokens
    entry.write_text(json.dumps(data))
    caplog.clear()
    with pytest.raises(Abort):
        site.build()
    assert "the input changed: the server laid the same request out in" in caplog.text


def test_a_repetition_penalty_is_refused_on_an_engine_rather_than_approximated(site, served, monkeypatch, caplog):
    monkeypatch.setenv("FAKE_KEY", "sk-secret-123")
    on_engine(site, served)
    site.write("docs/index.md", "# F\n\n```generate model=base max_new_tokens=4 repetition_penalty=1.3\nhello\n```\n")
    caplog.set_level(logging.INFO, logger="mkdocs")
    with pytest.raises(Abort):
        site.build()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(
        "docs/index.md:3" in e
        and "repetition_penalty= on the base model (vllm)" in e
        and "--> drop repetition_penalty= for this model, or run the model locally" in e
        for e in errors
    ), errors
    assert not [r for r in served.requests if r.path == "/v1/completions"]  # nothing approximate was asked
