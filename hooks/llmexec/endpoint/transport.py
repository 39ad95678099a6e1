"""HTTP to one serving engine: one exchange, retries with backoff, and errors that name the role, the server and the fix."""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any

from ..errors import LlmExecError, with_fix
from .answers import error_message, snippet

_MODEL_MISSING = re.compile(r"model\b.*\b(does not exist|not found|unknown)", re.IGNORECASE | re.DOTALL)
_PROBE_TIMEOUT = 10.0  # seconds for each best-effort identity probe


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


class Transport:
    """The HTTP side of one EndpointClient: the key, the exchange and its retries, and every error it raises."""

    def __init__(
        self, endpoint: Endpoint, role: str, environ: Mapping[str, str], sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.endpoint, self.role, self._sleep = endpoint, role, sleep
        self._api = endpoint.url.rstrip("/")
        self._key = ""
        self.served: tuple[str, ...] | None = None  # the ids the server listed, once asked
        if endpoint.api_key_env:
            name = endpoint.api_key_env
            self._key = environ.get(name, "")
            if not self._key:
                state = "is empty" if name in environ else "is not set"
                raise self.fail(
                    f"the environment variable {name} (named by `api_key_env`) {state}",
                    f"export {name}=<the server's API key> before building, or clear `api_key_env` if "
                    "the server needs no key",
                )

    def get_quietly(self, path: str, base: str = "") -> dict[str, Any]:
        """GET a route (at the server root unless base says), once; {} for any failure: it is only best effort."""
        try:
            url = (base or self.endpoint.root) + path
            status, raw, _ = self.send("GET", url, None, min(self.endpoint.timeout, _PROBE_TIMEOUT))
            answer = json.loads(raw) if status == 200 else {}
        except (OSError, http.client.HTTPException, ValueError):
            return {}
        return answer if isinstance(answer, dict) else {}

    # -- requests --------------------------------------------------------------------------------------------

    def send(self, method: str, url: str, body: Any, timeout: float) -> tuple[int, bytes, Message]:
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

    def exchange(self, method: str, path: str, body: Any = None) -> tuple[Any, Message]:
        """The parsed JSON answer; 5xx and dropped connections are retried `retries` times with backoff."""
        tries, last, last_status = self.endpoint.retries + 1, "", None
        for attempt in range(tries):
            if attempt:
                self._sleep(0.5 * 2 ** (attempt - 1))
            try:
                status, raw, headers = self.send(method, self._api + path, body, self.endpoint.timeout)
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
                raise self.fail(
                    f"{method} {path} answered something that is not JSON: {snippet(raw)!r}",
                    "check that `url` is the OpenAI-compatible API base (ending in /v1), not a web page "
                    "or a proxy's error page",
                ) from None
        raise self.fail(
            f"{method} {path} failed on each of {tries} tries; the last: {last}",
            f"check the server's log (it may be overloaded, restarting or out of memory); raise "
            f"`retries` (now {self.endpoint.retries}) if it is only briefly unavailable",
            last_status,
        )

    def _unanswered(self, error: Exception, method: str, path: str) -> str:
        """Why there was no answer: a dropped connection is returned (to retry); anything else raises."""
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        if isinstance(reason, TimeoutError):
            raise self.fail(
                f"no answer to {method} {path} within {self.endpoint.timeout:g} s",
                "raise `timeout` (seconds per request), or ask for fewer tokens",
            ) from None
        if isinstance(
            reason, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, http.client.HTTPException)
        ):
            return f"the connection was dropped ({reason or type(reason).__name__})"
        what = "connection refused" if isinstance(reason, ConnectionRefusedError) else str(reason)
        raise self.fail(
            f"cannot connect ({what})", f"start the server, or check `url` (now {self._public_url()})"
        ) from None

    def _rejected(self, status: int, message: str, method: str, path: str) -> EndpointError:
        if status in (401, 403):
            name = self.endpoint.api_key_env
            fix = (
                f"set {name} to the key the server was started with (its --api-key)"
                if name
                else "put the server's key in an environment variable and set `api_key_env` to that variable's name"
            )
            return self.fail(
                f"the server refused the {'key in ' + name if name else 'request without a key'} "
                f"(HTTP {status}: {message})",
                fix,
                status,
            )
        if _MODEL_MISSING.search(message):
            served = self.served if self.served is not None else ids(self.get_quietly("/models", self._api))
            listed = f"; it serves: {', '.join(served)}" if served else ""
            return self.fail(
                f"the server does not serve '{self.endpoint.model}' (HTTP {status}: {message}){listed}",
                "set `model` to a served id, or start the server under this name",
                status,
            )
        if status == 404:
            return self.fail(
                f"{method} {path} was not found (HTTP 404: {message})",
                f"check `url` (now {self._public_url()}): it must be the API base ending in /v1, "
                "e.g. http://127.0.0.1:8080/v1",
                status,
            )
        return self.fail(
            f"the server rejected {method} {path} (HTTP {status}): {message}",
            "change what the server objects to above (max_tokens, stop, logprobs, seed), or its limits "
            "(vLLM: --max-model-len, --max-logprobs)",
            status,
        )

    def _public_url(self) -> str:
        parts = urllib.parse.urlsplit(self.endpoint.url)
        return f"{parts.scheme}://{self.endpoint.host_port}{parts.path}"

    def fail(self, what: str, fix: str, status: int | None = None) -> EndpointError:
        message = with_fix(f"model '{self.role}' (endpoint {self.endpoint.host_port}): {what}", fix)
        return EndpointError(message.replace(self._key, "***") if self._key else message, status)


def ids(listing: Any) -> tuple[str, ...]:
    cards = listing.get("data") if isinstance(listing, dict) else None
    return tuple(str(c.get("id")) for c in cards if isinstance(c, dict)) if isinstance(cards, list) else ()
