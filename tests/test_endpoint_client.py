"""The endpoint client against a fake OpenAI-compatible server: answers, keys, each failure's message, retries."""

from __future__ import annotations

import socket

import pytest

from fake_openai import FakeOpenAI, Fault
from llmexec.endpoint.client import Completion, Endpoint, EndpointClient, EndpointError, run_concurrently

KEY = "sk-secret-4f1c9e"
MODEL = "fake/base"


def client(
    fake: FakeOpenAI,
    *,
    model: str = MODEL,
    env: dict[str, str] | None = None,
    sleeps: list[float] | None = None,
    url: str = "",
    **options: object,
) -> EndpointClient:
    endpoint = Endpoint(url=url or fake.url, model=model, **options)  # type: ignore[arg-type]
    record = sleeps if sleeps is not None else []
    return EndpointClient(endpoint, "base", env or {}, sleep=record.append)


def failure(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(EndpointError) as caught:
        call()
    return str(caught.value)


def assert_names(message: str, fake: FakeOpenAI, *fix_words: str) -> None:
    """Every failure names the role, the host:port and the fix (after the house-style arrow)."""
    host_port = fake.url.split("//")[1].split("/")[0]
    assert "model 'base'" in message and f"endpoint {host_port}" in message, message
    fix = message.split("-->", 1)[1]
    for word in fix_words:
        assert word in fix, message


# -- answers ----------------------------------------------------------------------------------------------------


def test_complete_reads_text_finish_usage_and_completions_logprobs() -> None:
    with FakeOpenAI(engine="vllm") as fake:
        done = client(fake).complete("The capital of France is", max_tokens=20, logprobs=2, seed=7)
    assert isinstance(done, Completion)
    assert (done.text, done.finish_reason) == ("Paris is the capital of France.", "eos")
    assert (done.prompt_tokens, done.completion_tokens) == (5, 7)
    assert [t.token for t in done.tokens] == ["Paris", " is", " the", " capital", " of", " France", "."]
    assert done.tokens[1].logprob == pytest.approx(-0.2)
    assert done.tokens[1].top == ((" is", pytest.approx(-0.2)), ("alt1", pytest.approx(-1.2)))  # most likely first
    sent = fake.requests[-1]
    assert sent.path == "/v1/completions"
    assert sent.body == {
        "model": MODEL,
        "prompt": "The capital of France is",
        "max_tokens": 20,
        "temperature": 0.0,
        "top_p": 1.0,
        "stream": False,
        "seed": 7,
        "logprobs": 2,
    }


def test_llama_cpp_completions_logprobs_in_the_chat_shape_are_read() -> None:
    with FakeOpenAI(engine="llama.cpp") as fake:
        done = client(fake).complete("The capital of France is", max_tokens=3, logprobs=3)
    assert done.text == "Paris is the" and done.finish_reason == "length"
    assert [t.token for t in done.tokens] == ["Paris", " is", " the"]
    assert [a for a, _ in done.tokens[2].top] == [" the", "alt1", "alt2"]


def test_chat_reads_the_message_and_chat_logprobs() -> None:
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    with FakeOpenAI(engine="sglang") as fake:
        done = client(fake).chat(messages, max_tokens=20, temperature=0.7, top_p=0.9, logprobs=3)
    assert (done.text, done.finish_reason, done.completion_tokens) == ("Paris is the capital of France.", "eos", 7)
    assert done.tokens[0].token == "Paris" and done.tokens[0].logprob == pytest.approx(-0.1)
    assert len(done.tokens[0].top) == 3
    sent = fake.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.body["messages"] == messages and sent.body["logprobs"] is True and sent.body["top_logprobs"] == 3
    assert (sent.body["temperature"], sent.body["top_p"]) == (0.7, 0.9) and "seed" not in sent.body


@pytest.mark.parametrize(
    ("engine", "expected"), [("vllm", "stop_sequence"), ("sglang", "stop_sequence"), ("llama.cpp", "eos")]
)  # llama.cpp says "stop" either way
def test_a_matched_stop_string_is_told_apart_where_the_server_says_so(engine: str, expected: str) -> None:
    with FakeOpenAI(engine=engine) as fake:
        done = client(fake).complete("x", max_tokens=20, stop=(" capital",))
    assert (done.text, done.finish_reason) == ("Paris is the", expected)
    assert fake.requests[-1].body["stop"] == [" capital"]


# -- keys -------------------------------------------------------------------------------------------------------


def test_the_key_goes_as_a_bearer_header_and_never_into_error_text() -> None:
    env = {"VLLM_KEY": KEY}
    with FakeOpenAI(key=KEY) as fake:
        assert client(fake, api_key_env="VLLM_KEY", env=env).complete("x", max_tokens=2).text == "Paris is"
        assert fake.requests[-1].headers["Authorization"] == f"Bearer {KEY}"
        fake.fail("/v1/completions", Fault(status=400, message=f"bad request from key {KEY}"))
        echoed = failure(lambda: client(fake, api_key_env="VLLM_KEY", env=env).complete("x", max_tokens=2))
        assert "bad request from key ***" in echoed
        rejected = failure(
            lambda: client(fake, api_key_env="VLLM_KEY", env={"VLLM_KEY": "sk-wrong"}).complete("x", max_tokens=2)
        )
    for message in (echoed, rejected):
        assert KEY not in message
    assert "HTTP 401" in rejected and "key in VLLM_KEY" in rejected
    assert_names(rejected, fake, "VLLM_KEY", "--api-key")


def test_a_missing_key_variable_is_named_with_the_role_and_how_to_set_it() -> None:
    endpoint = Endpoint(url="http://127.0.0.1:9/v1", model=MODEL, api_key_env="SERVER_KEY")
    for env, state in (({}, "is not set"), ({"SERVER_KEY": ""}, "is empty")):
        with pytest.raises(EndpointError) as caught:
            EndpointClient(endpoint, "instruct", env)
        message = str(caught.value)
        assert "model 'instruct'" in message and f"SERVER_KEY (named by `api_key_env`) {state}" in message
        assert "export SERVER_KEY=" in message.split("-->")[1]


def test_a_server_that_wants_a_key_when_none_is_configured_says_to_set_api_key_env() -> None:
    with FakeOpenAI(key=KEY) as fake:
        message = failure(lambda: client(fake).complete("x", max_tokens=2))
    assert "HTTP 401" in message and "without a key" in message
    assert_names(message, fake, "`api_key_env`")


# -- failures ---------------------------------------------------------------------------------------------------


def test_connection_refused_says_to_start_the_server() -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]  # nothing listens once the socket is closed
    sleeps: list[float] = []
    endpoint = Endpoint(url=f"http://127.0.0.1:{port}/v1", model=MODEL)
    with pytest.raises(EndpointError) as caught:
        EndpointClient(endpoint, "base", {}, sleep=sleeps.append).complete("x", max_tokens=2)
    message = str(caught.value)
    assert f"model 'base' (endpoint 127.0.0.1:{port})" in message and "connection refused" in message
    assert "start the server, or check `url`" in message.split("-->")[1] and sleeps == []  # not retried


def test_a_timeout_says_to_raise_timeout_and_is_not_retried() -> None:
    with FakeOpenAI() as fake:
        fake.fail("/v1/completions", Fault(delay=1.0))
        message = failure(lambda: client(fake, timeout=0.2).complete("x", max_tokens=2))
        assert fake.count("/v1/completions") == 1
    assert "within 0.2 s" in message
    assert_names(message, fake, "raise `timeout`")


def test_an_unknown_model_names_the_served_ones() -> None:
    with FakeOpenAI(models=("fake/base", "fake/chat")) as fake:
        message = failure(lambda: client(fake, model="fake/nope").complete("x", max_tokens=2))
    assert "does not serve 'fake/nope'" in message and "it serves: fake/base, fake/chat" in message
    assert "HTTP 404" in message
    assert_names(message, fake, "`model`")


def test_a_404_for_the_route_says_the_url_must_end_in_v1() -> None:
    with FakeOpenAI() as fake:
        message = failure(lambda: client(fake, url=fake.url[: -len("/v1")]).complete("x", max_tokens=2))
    assert "POST /completions was not found (HTTP 404: Not Found)" in message
    assert_names(message, fake, "`url`", "/v1")


def test_a_400_shows_the_servers_message() -> None:
    with FakeOpenAI() as fake:
        fake.fail("/v1/completions", Fault(status=400, message="max_tokens must be at least 1, got 0."))
        message = failure(lambda: client(fake).complete("x", max_tokens=0))
    assert "(HTTP 400): max_tokens must be at least 1, got 0." in message
    assert_names(message, fake, "max_tokens")


def test_5xx_is_retried_with_backoff_then_gives_up_saying_how_many_tries() -> None:
    sleeps: list[float] = []
    with FakeOpenAI() as fake:
        fake.fail("/v1/completions", *[Fault(status=503, message="engine overloaded")] * 4)
        message = failure(lambda: client(fake, retries=3, sleeps=sleeps).complete("x", max_tokens=2))
        assert fake.count("/v1/completions") == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert "failed on each of 4 tries; the last: HTTP 503 engine overloaded" in message
    assert_names(message, fake, "`retries` (now 3)")


def test_a_transient_503_then_success_gives_the_answer() -> None:
    sleeps: list[float] = []
    with FakeOpenAI() as fake:
        fake.fail("/v1/completions", Fault(status=503))
        done = client(fake, sleeps=sleeps).complete("x", max_tokens=2)
        assert fake.count("/v1/completions") == 2
    assert done.text == "Paris is" and sleeps == [0.5]


def test_a_dropped_connection_is_retried() -> None:
    sleeps: list[float] = []
    with FakeOpenAI() as fake:
        fake.fail("/v1/completions", Fault(drop=True), Fault(drop=True))
        done = client(fake, sleeps=sleeps).complete("x", max_tokens=2)
        assert fake.count("/v1/completions") == 3
        fake.fail("/v1/completions", *[Fault(drop=True)] * 2)
        message = failure(lambda: client(fake, retries=1).complete("x", max_tokens=2))
    assert done.text == "Paris is" and sleeps == [0.5, 1.0]
    assert "failed on each of 2 tries; the last: the connection was dropped" in message


def test_a_body_that_is_not_json_is_quoted_up_to_200_characters() -> None:
    page = "<html>" + "x" * 500
    with FakeOpenAI() as fake:
        fake.fail("/v1/completions", Fault(body=page))
        message = failure(lambda: client(fake).complete("x", max_tokens=2))
    assert "not JSON: '<html>" + "x" * 194 + "…'" in message and "x" * 195 not in message
    assert_names(message, fake, "`url`")


def test_missing_logprobs_say_the_server_did_not_return_them() -> None:
    with FakeOpenAI() as fake:
        fake.fail("/v1/chat/completions", Fault(omit_logprobs=True))
        message = failure(lambda: client(fake).chat([{"role": "user", "content": "hi"}], max_tokens=2, logprobs=1))
    assert "the server did not return log-probabilities" in message
    assert_names(message, fake, "do not ask for log-probabilities")


# -- identity ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("engine", "name", "path", "revision"),
    [
        ("vllm", "vllm", MODEL, "abc123"),
        ("sglang", "sglang", f"/models/{MODEL}", "v2-from-server"),
        ("llama.cpp", "llama.cpp", "/models/fake-q4_k_m.gguf", "abc123"),
        ("llama-cpp-python", "llama-cpp-python", "", "abc123"),
        ("plain", "FakeServer/1.0", "", "abc123"),  # no identity route: the HTTP Server header
    ],
)
def test_describe_names_the_engine_its_version_and_the_model(engine: str, name: str, path: str, revision: str) -> None:
    with FakeOpenAI(engine=engine, version="1.2.3", revision="v2-from-server", key=KEY) as fake:
        info = client(fake, revision="abc123", api_key_env="K", env={"K": KEY}).describe()
    assert (info.engine, info.model_id, info.model_path, info.model_revision) == (name, MODEL, path, revision)
    assert info.engine_version == ("" if engine == "plain" else "1.2.3")
    assert info.record["id"] == MODEL and KEY not in repr(info)  # SGLang's server info holds the key too
    assert len([r for r in fake.requests if r.path != "/v1/models"]) <= 3  # cheap: one GET per likely engine


def test_describe_with_a_model_not_served_lists_the_served_ones() -> None:
    with FakeOpenAI(models=("fake/base", "fake/chat")) as fake:
        message = failure(lambda: client(fake, model="fake/other").describe())
    assert "does not serve 'fake/other'; it serves: fake/base, fake/chat" in message
    assert_names(message, fake, "`model`", "--served-model-name", "--alias")


# -- concurrency ------------------------------------------------------------------------------------------------


def test_run_concurrently_keeps_order_bounds_in_flight_and_returns_errors_per_item() -> None:
    with FakeOpenAI(delay=0.1, reply=lambda prompt: ("echo", " " + prompt.split()[-1])) as fake:
        endpoint_client = client(fake)

        def generate(i: int) -> str:
            if i == 5:
                raise ValueError("item 5 is bad")
            return endpoint_client.complete(f"count {i}", max_tokens=4).text

        results = run_concurrently(generate, range(10), concurrency=3)
        assert fake.max_in_flight == 3
    assert results[:5] == [f"echo {i}" for i in range(5)] and results[6:] == [f"echo {i}" for i in range(6, 10)]
    assert isinstance(results[5], ValueError) and str(results[5]) == "item 5 is bad"
    assert run_concurrently(generate, [], 4) == []
