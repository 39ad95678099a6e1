"""A stdlib client for one model on a serving engine's OpenAI-compatible API: identity, completions, chat, retries.

What each engine says about itself, read in its own source rather than guessed:
- vLLM: `/v1/models` cards have owned_by "vllm" and root (the model path); GET /version at the server root answers
  {"version": "0.x.y"} (vllm/entrypoints/openai/basic/api_router.py). Choices carry stop_reason: the stop string
  or token id that ended them, None for EOS. Completions log-probabilities: tokens/token_logprobs/top_logprobs.
- SGLang: owned_by "sglang"; GET /get_server_info answers its server arguments (model_path, revision, and also
  api_key, so only version, model_path and revision are kept) plus "version"
  (python/sglang/srt/entrypoints/http_server.py). Choices carry matched_stop (string, token id or None).
- llama.cpp's llama-server: owned_by "llamacpp"; GET /props answers build_info ("b<number>-<commit>") and
  model_path (tools/server/README.md). Its /v1/completions gives log-probabilities in the chat shape
  (logprobs.content[*]) and finish_reason "stop" for both EOS and a stop word (tools/server/server-task.cpp).
- llama-cpp-python's server (FastAPI): owned_by "me", none of the routes above; its /openapi.json is titled
  "🦙 llama.cpp Python API" with the package version (llama_cpp/server/app.py).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from .answers import Completion, finish_reason, parse_logprobs, snippet
from .transport import Endpoint, Transport
from .transport import EndpointError as EndpointError  # re-exported: the client's callers catch it
from .transport import ids as _ids

T = TypeVar("T")
R = TypeVar("R")
_OWNERS = {"vllm": "vllm", "sglang": "sglang", "llamacpp": "llama.cpp", "me": "llama-cpp-python"}  # card owned_by


@dataclass(frozen=True)
class ServerInfo:
    """What the server says it is, for the identity of what it generates."""

    engine: str  # vllm, sglang, llama.cpp, llama-cpp-python, else the HTTP Server header or "unknown"
    engine_version: str  # "" when the engine does not say
    model_id: str
    model_revision: str  # from the server if it reports one, else the configured revision
    model_path: str  # the weights the server loaded, where it says ("" otherwise)
    record: Mapping[str, Any]  # the model's card from GET /models, as served


class EndpointClient:
    """Talks to one Endpoint on behalf of one model role; every error names the role, host:port and the fix."""

    def __init__(
        self,
        endpoint: Endpoint,
        role: str,
        environ: Mapping[str, str] = os.environ,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint, self.role = endpoint, role
        self.http = Transport(endpoint, role, environ, sleep)
        self._exchange, self._fail, self._get_quietly = self.http.exchange, self.http.fail, self.http.get_quietly
        self.extra: dict[str, Any] = {}  # engine-specific fields added to every generation request

    def describe(self) -> ServerInfo:
        """GET /models, check the configured model is served, then ask the engine its name and version cheaply."""
        listing, headers = self._exchange("GET", "/models")
        self.http.served = _ids(listing)
        cards = listing.get("data") if isinstance(listing, dict) else None
        record = next((c for c in cards or () if isinstance(c, dict) and c.get("id") == self.endpoint.model), None)
        if record is None:
            raise self._fail(
                f"the server does not serve '{self.endpoint.model}'; it serves: "
                f"{', '.join(self.http.served) or 'nothing'}",
                "set `model` to one of those ids, or start the server under this name "
                "(vLLM, SGLang: --served-model-name; llama-server: --alias; llama-cpp-python: --model_alias)",
            )
        engine, version, revision, path = self._identify(record, headers.get("Server", ""))
        return ServerInfo(engine, version, self.endpoint.model, revision or self.endpoint.revision, path, record)

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        stop: Sequence[str] = (),
        logprobs: int = 0,
    ) -> Completion:
        """The raw prompt continued (POST /completions), what a base model needs; logprobs: top alternatives."""
        body = self._body(max_tokens, temperature, top_p, seed, stop, prompt=prompt)
        return self._generate("/completions", {**body, "logprobs": logprobs} if logprobs else body, logprobs)

    def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        stop: Sequence[str] = (),
        logprobs: int = 0,
    ) -> Completion:
        """A reply to chat messages (POST /chat/completions), the server applying the model's chat template."""
        body = self._body(max_tokens, temperature, top_p, seed, stop, messages=list(messages))
        return self._generate(
            "/chat/completions", {**body, "logprobs": True, "top_logprobs": logprobs} if logprobs else body, logprobs
        )

    def _body(
        self, max_tokens: int, temperature: float, top_p: float, seed: int | None, stop: Sequence[str], **payload: Any
    ) -> dict[str, Any]:
        body = {
            "model": self.endpoint.model,
            **payload,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "stream": False,
            **self.extra,
        }
        return body | ({"seed": seed} if seed is not None else {}) | ({"stop": list(stop)} if stop else {})

    # -- generation -------------------------------------------------------------------------------------------

    def _generate(self, path: str, body: dict[str, Any], logprobs: int) -> Completion:
        started = time.monotonic()
        response, _ = self._exchange("POST", path, body)
        choices = response.get("choices") if isinstance(response, dict) else None
        if not choices or not isinstance(choices[0], dict):
            raise self._fail(
                f"POST {path} answered without choices: {snippet(json.dumps(response))}",
                "check that `url` points at an OpenAI-compatible server",
            )
        choice = choices[0]
        message = choice.get("message")
        message = message if isinstance(message, dict) else {}
        text = choice.get("text") if "text" in choice else message.get("content")
        usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
        done = int(usage.get("completion_tokens") or 0)
        tokens = parse_logprobs(choice.get("logprobs"))
        if logprobs and not tokens and (done or text):
            raise self._fail(
                f"asked for log-probabilities (top {logprobs}) on POST {path}, but the server did not "
                "return log-probabilities",
                "use a server that returns them (vLLM, SGLang, llama.cpp's llama-server; llama-cpp-python "
                "only with logits_all: true), or do not ask for log-probabilities",
            )
        return Completion(
            str(text or ""),
            finish_reason(choice),
            int(usage.get("prompt_tokens") or 0),
            done,
            tokens,
            time.monotonic() - started,
        )

    # -- identity ---------------------------------------------------------------------------------------------

    def _identify(self, record: Mapping[str, Any], server: str) -> tuple[str, str, str, str]:
        """(engine, version, revision, model path); one cheap GET per likely engine, failures ignored."""
        owner = _OWNERS.get(str(record.get("owned_by", "")), "")
        for engine in (owner,) if owner else ("vllm", "llama.cpp", "sglang"):
            if found := self._probe(engine, record):
                return found
        return owner or server or "unknown", "", "", str(record.get("root") or "")

    def _probe(self, engine: str, record: Mapping[str, Any]) -> tuple[str, str, str, str] | None:
        if engine == "vllm" and "version" in (answer := self._get_quietly("/version")):
            return "vllm", str(answer["version"]), "", str(record.get("root") or "")
        if engine == "llama.cpp" and "build_info" in (answer := self._get_quietly("/props")):
            return "llama.cpp", str(answer["build_info"]), "", str(answer.get("model_path") or "")
        if engine == "sglang" and "version" in (answer := self._get_quietly("/get_server_info")):
            return (
                "sglang",
                str(answer["version"]),
                str(answer.get("revision") or ""),
                str(answer.get("model_path") or ""),
            )
        if engine == "llama-cpp-python":
            info = self._get_quietly("/openapi.json").get("info")
            if isinstance(info, dict) and "llama.cpp python" in str(info.get("title", "")).lower():
                return "llama-cpp-python", str(info.get("version") or ""), "", ""
        return None


def run_concurrently(function: Callable[[T], R], items: Iterable[T], concurrency: int) -> list[R | Exception]:
    """function over items, at most `concurrency` at once, results in input order; an item's exception is returned
    in its place (not raised) so callers can report each item."""
    work = list(items)

    def guarded(item: T) -> R | Exception:
        try:
            return function(item)
        except Exception as error:  # returned to the caller, per item
            return error

    if not work:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(work)))) as pool:
        return list(pool.map(guarded, work))
