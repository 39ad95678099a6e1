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

import http.client
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import Message
from typing import Any, TypeVar

from ..errors import LlmExecError, with_fix
from .answers import Completion, TokenLogprob, error_message, finish_reason, parse_logprobs, snippet  # noqa: F401 (re-exported)

T = TypeVar("T")
R = TypeVar("R")
_MODEL_MISSING = re.compile(r"model\b.*\b(does not exist|not found|unknown)", re.IGNORECASE | re.DOTALL)
_PROBE_TIMEOUT = 10.0  # seconds for each best-effort identity probe
_OWNERS = {"vllm": "vllm", "sglang": "sglang", "llamacpp": "llama.cpp", "me": "llama-cpp-python"}  # card owned_by


class EndpointError(LlmExecError):
    """A serving engine could not be reached, refused a request, or answered something unusable.

    Example: "model 'base' (endpoint 127.0.0.1:8080): cannot connect (connection refused)
      --> start the server, or check `url` (now http://127.0.0.1:8080/v1)"
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status behind the error, None when there was no answer


@dataclass(frozen=True)
class Endpoint:
    """Where one model is served. The API key itself is never held here: only the name of its variable."""

    url: str  # the API base, ending in /v1, e.g. http://127.0.0.1:8080/v1
    model: str  # the served model name
    revision: str = ""  # what the user pins: a commit, the GGUF sha256, ...
    api_key_env: str = ""  # the NAME of the environment variable that holds the key
    concurrency: int = 4
    timeout: float = 120.0  # seconds per request
    retries: int = 3  # further tries after a 5xx answer or a dropped connection

    @property
    def host_port(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{parts.hostname or '?'}:{port}"  # never the user:password@ part

    @property
    def root(self) -> str:
        base = self.url.rstrip("/")
        return base[: -len("/v1")] if base.endswith("/v1") else base


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

    def __init__(self, endpoint: Endpoint, role: str, environ: Mapping[str, str] = os.environ, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.endpoint, self.role, self._sleep = endpoint, role, sleep
        self._api = endpoint.url.rstrip("/")
        self._key = ""
        self._served: tuple[str, ...] | None = None
        self.extra: dict[str, Any] = {}  # engine-specific fields added to every generation request
        if endpoint.api_key_env:
            name = endpoint.api_key_env
            self._key = environ.get(name, "")
            if not self._key:
                state = "is empty" if name in environ else "is not set"
                raise self._fail(f"the environment variable {name} (named by `api_key_env`) {state}",
                                 f"export {name}=<the server's API key> before building, or clear `api_key_env` if "
                                 "the server needs no key")

    def describe(self) -> ServerInfo:
        """GET /models, check the configured model is served, then ask the engine its name and version cheaply."""
        listing, headers = self._exchange("GET", "/models")
        self._served = _ids(listing)
        cards = listing.get("data") if isinstance(listing, dict) else None
        record = next((c for c in cards or () if isinstance(c, dict) and c.get("id") == self.endpoint.model), None)
        if record is None:
            raise self._fail(f"the server does not serve '{self.endpoint.model}'; it serves: "
                             f"{', '.join(self._served) or 'nothing'}",
                             "set `model` to one of those ids, or start the server under this name "
                             "(vLLM, SGLang: --served-model-name; llama-server: --alias; llama-cpp-python: --model_alias)")
        engine, version, revision, path = self._identify(record, headers.get("Server", ""))
        return ServerInfo(engine, version, self.endpoint.model, revision or self.endpoint.revision, path, record)

    def complete(self, prompt: str, *, max_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
                 seed: int | None = None, stop: Sequence[str] = (), logprobs: int = 0) -> Completion:
        """The raw prompt continued (POST /completions), what a base model needs; logprobs: top alternatives."""
        body = self._body(max_tokens, temperature, top_p, seed, stop, prompt=prompt)
        return self._generate("/completions", {**body, "logprobs": logprobs} if logprobs else body, logprobs)

    def chat(self, messages: list[dict[str, Any]], *, max_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
             seed: int | None = None, stop: Sequence[str] = (), logprobs: int = 0) -> Completion:
        """A reply to chat messages (POST /chat/completions), the server applying the model's chat template."""
        body = self._body(max_tokens, temperature, top_p, seed, stop, messages=list(messages))
        return self._generate("/chat/completions", {**body, "logprobs": True, "top_logprobs": logprobs} if logprobs
                              else body, logprobs)

    def _body(self, max_tokens: int, temperature: float, top_p: float, seed: int | None, stop: Sequence[str],
              **payload: Any) -> dict[str, Any]:
        body = {"model": self.endpoint.model, **payload, "max_tokens": max_tokens, "temperature": temperature,
                "top_p": top_p, "stream": False, **self.extra}
        return body | ({"seed": seed} if seed is not None else {}) | ({"stop": list(stop)} if stop else {})

    # -- generation -------------------------------------------------------------------------------------------

    def _generate(self, path: str, body: dict[str, Any], logprobs: int) -> Completion:
        started = time.monotonic()
        response, _ = self._exchange("POST", path, body)
        choices = response.get("choices") if isinstance(response, dict) else None
        if not choices or not isinstance(choices[0], dict):
            raise self._fail(f"POST {path} answered without choices: {snippet(json.dumps(response))}",
                             "check that `url` points at an OpenAI-compatible server")
        choice = choices[0]
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        text = choice.get("text") if "text" in choice else message.get("content")
        usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
        done = int(usage.get("completion_tokens") or 0)
        tokens = parse_logprobs(choice.get("logprobs"))
        if logprobs and not tokens and (done or text):
            raise self._fail(f"asked for log-probabilities (top {logprobs}) on POST {path}, but the server did not "
                             "return log-probabilities",
                             "use a server that returns them (vLLM, SGLang, llama.cpp's llama-server; llama-cpp-python "
                             "only with logits_all: true), or do not ask for log-probabilities")
        return Completion(str(text or ""), finish_reason(choice), int(usage.get("prompt_tokens") or 0), done, tokens,
                          time.monotonic() - started)

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
            return ("sglang", str(answer["version"]), str(answer.get("revision") or ""),
                    str(answer.get("model_path") or ""))
        if engine == "llama-cpp-python":
            info = self._get_quietly("/openapi.json").get("info")
            if isinstance(info, dict) and "llama.cpp python" in str(info.get("title", "")).lower():
                return "llama-cpp-python", str(info.get("version") or ""), "", ""
        return None

    def _get_quietly(self, path: str, base: str = "") -> dict[str, Any]:
        """GET a route (at the server root unless base says), once; {} for any failure: it is only best effort."""
        try:
            url = (base or self.endpoint.root) + path
            status, raw, _ = self._send("GET", url, None, min(self.endpoint.timeout, _PROBE_TIMEOUT))
            answer = json.loads(raw) if status == 200 else {}
        except (OSError, http.client.HTTPException, ValueError):
            return {}
        return answer if isinstance(answer, dict) else {}

    # -- transport --------------------------------------------------------------------------------------------

    def _send(self, method: str, url: str, body: Any, timeout: float) -> tuple[int, bytes, Message]:
        """One HTTP exchange; error statuses are returned, not raised."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read(), error.headers

    def _exchange(self, method: str, path: str, body: Any = None) -> tuple[Any, Message]:
        """The parsed JSON answer; 5xx and dropped connections are retried `retries` times with backoff."""
        tries, last, last_status = self.endpoint.retries + 1, "", None
        for attempt in range(tries):
            if attempt:
                self._sleep(0.5 * 2 ** (attempt - 1))
            try:
                status, raw, headers = self._send(method, self._api + path, body, self.endpoint.timeout)
            except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
                last, last_status = self._unanswered(error, method, path), None
                continue
            if status >= 500:
                last, last_status = f"HTTP {status} {error_message(raw)}".strip(), status
                continue
            if status >= 400:
                raise self._rejected(status, error_message(raw), method, path)
            try:
                return json.loads(raw), headers
            except ValueError:
                raise self._fail(f"{method} {path} answered something that is not JSON: {snippet(raw)!r}",
                                 "check that `url` is the OpenAI-compatible API base (ending in /v1), not a web page "
                                 "or a proxy's error page") from None
        raise self._fail(f"{method} {path} failed on each of {tries} tries; the last: {last}",
                         f"check the server's log (it may be overloaded, restarting or out of memory); raise "
                         f"`retries` (now {self.endpoint.retries}) if it is only briefly unavailable", last_status)

    def _unanswered(self, error: Exception, method: str, path: str) -> str:
        """Why there was no answer: a dropped connection is returned (to retry); anything else raises."""
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        if isinstance(reason, TimeoutError):
            raise self._fail(f"no answer to {method} {path} within {self.endpoint.timeout:g} s",
                             "raise `timeout` (seconds per request), or ask for fewer tokens") from None
        if isinstance(reason, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
                               http.client.HTTPException)):
            return f"the connection was dropped ({reason or type(reason).__name__})"
        what = "connection refused" if isinstance(reason, ConnectionRefusedError) else str(reason)
        raise self._fail(f"cannot connect ({what})",
                         f"start the server, or check `url` (now {self._public_url()})") from None

    def _rejected(self, status: int, message: str, method: str, path: str) -> EndpointError:
        if status in (401, 403):
            name = self.endpoint.api_key_env
            fix = (f"set {name} to the key the server was started with (its --api-key)" if name else
                   "put the server's key in an environment variable and set `api_key_env` to that variable's name")
            return self._fail(f"the server refused the {'key in ' + name if name else 'request without a key'} "
                              f"(HTTP {status}: {message})", fix, status)
        if _MODEL_MISSING.search(message):
            served = self._served if self._served is not None else _ids(self._get_quietly("/models", self._api))
            listed = f"; it serves: {', '.join(served)}" if served else ""
            return self._fail(f"the server does not serve '{self.endpoint.model}' (HTTP {status}: {message}){listed}",
                              "set `model` to a served id, or start the server under this name", status)
        if status == 404:
            return self._fail(f"{method} {path} was not found (HTTP 404: {message})",
                              f"check `url` (now {self._public_url()}): it must be the API base ending in /v1, "
                              "e.g. http://127.0.0.1:8080/v1", status)
        return self._fail(f"the server rejected {method} {path} (HTTP {status}): {message}",
                          "change what the server objects to above (max_tokens, stop, logprobs, seed), or its limits "
                          "(vLLM: --max-model-len, --max-logprobs)", status)

    def _public_url(self) -> str:
        parts = urllib.parse.urlsplit(self.endpoint.url)
        return f"{parts.scheme}://{self.endpoint.host_port}{parts.path}"

    def _fail(self, what: str, fix: str, status: int | None = None) -> EndpointError:
        message = with_fix(f"model '{self.role}' (endpoint {self.endpoint.host_port}): {what}", fix)
        return EndpointError(message.replace(self._key, "***") if self._key else message, status)


def run_concurrently(function: Callable[[T], R], items: Iterable[T], concurrency: int) -> list[R | Exception]:
    """function over items, at most `concurrency` at once, results in input order; an item's exception is returned
    in its place (not raised) so callers can report each item."""
    work = list(items)

    def guarded(item: T) -> R | Exception:
        try:
            return function(item)
        except Exception as error:  # noqa: BLE001 -- returned to the caller, per item
            return error

    if not work:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(work)))) as pool:
        return list(pool.map(guarded, work))


def _ids(listing: Any) -> tuple[str, ...]:
    cards = listing.get("data") if isinstance(listing, dict) else None
    return tuple(str(c.get("id")) for c in cards if isinstance(c, dict)) if isinstance(cards, list) else ()
