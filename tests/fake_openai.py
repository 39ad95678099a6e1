"""A fake OpenAI-compatible server in a thread: real vLLM/SGLang/llama.cpp answer shapes, scripted faults, a record."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WORDS = ("Paris", " is", " the", " capital", " of", " France", ".")
ENGINES = ("vllm", "sglang", "llama.cpp", "llama-cpp-python", "plain")


@dataclass(frozen=True)
class Fault:
    """What one request gets instead of the normal answer; faults for a path are used up in order."""

    status: int = 0  # answer with this status and an OpenAI-style error body carrying `message`
    message: str = "scripted failure"
    body: str | None = None  # answer exactly this text (status 200 unless `status` says otherwise)
    delay: float = 0.0  # wait this long first; with nothing else set, then answer normally
    drop: bool = False  # close the connection without answering
    omit_logprobs: bool = False  # answer normally but without log-probabilities


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class FakeOpenAI:
    """Use as `with FakeOpenAI(...) as fake:`; fake.url is the API base (…/v1) and fake.requests what came in."""

    models: Sequence[str] = ("fake/base",)
    key: str = ""  # when set, /v1 routes need `Authorization: Bearer <key>`
    engine: str = "vllm"  # which engine's shapes and identity routes to imitate (see ENGINES)
    version: str = "0.9.2"
    revision: str = ""  # SGLang reports its --revision in /get_server_info
    delay: float = 0.0  # seconds every generation takes
    reply: Callable[[str], Sequence[str]] = lambda prompt: WORDS  # the tokens generated for a prompt
    requests: list[Received] = field(default_factory=list)
    max_in_flight: int = 0
    _faults: dict[str, list[Fault]] = field(default_factory=dict)
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, path: str, *faults: Fault) -> None:
        """The next requests to `path` (e.g. "/v1/completions") get these faults, in order."""
        with self._lock:
            self._faults.setdefault(path, []).extend(faults)

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    def __enter__(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def version_string(self) -> str:
                return {"llama.cpp": "llama.cpp", "plain": "FakeServer/1.0"}.get(fake.engine, "uvicorn")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    # -- one request --------------------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        path = handler.path.split("?")[0]
        body = json.loads(raw) if raw else None
        with self._lock:
            self.requests.append(Received(method, path, body, dict(handler.headers)))
            fault = self._faults[path].pop(0) if self._faults.get(path) else Fault()
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        left = False

        def leave() -> None:  # before the answer is written: a client may send its next request as soon as it reads it
            nonlocal left
            if not left:
                left = True
                with self._lock:
                    self._in_flight -= 1

        try:
            time.sleep(fault.delay)
            if fault.drop:
                handler.close_connection = True
                leave()
                handler.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault.body is not None:
                leave()
                return _send(handler, fault.status or 200, fault.body.encode(), "text/html")
            if fault.status:
                leave()
                return _error(handler, fault.status, fault.message)
            status, answer = self._answer(method, path, handler.headers.get("Authorization", ""), body, fault)
            leave()
            _send(handler, status, json.dumps(answer).encode(), "application/json")
        except OSError:  # the client gave up (timed out) before the answer
            pass
        finally:
            leave()

    def _answer(self, method: str, path: str, auth: str, body: Any, fault: Fault) -> tuple[int, Any]:
        if path.startswith("/v1/") and self.key and auth != f"Bearer {self.key}":
            return 401, {"error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}}
        identity = self._identity(path)
        if method == "GET" and identity is not None:
            return 200, identity
        if method == "GET" and path == "/v1/models":
            return 200, {"object": "list", "data": [self._card(m) for m in self.models]}
        if method == "POST" and path in ("/v1/completions", "/v1/chat/completions"):
            if body.get("model") not in self.models:
                return 404, {
                    "error": {
                        "message": f"The model `{body.get('model')}` does not exist.",
                        "type": "NotFoundError",
                        "param": None,
                        "code": 404,
                    }
                }
            time.sleep(self.delay)
            return 200, self._generate(path == "/v1/chat/completions", body, fault)
        return 404, {"detail": "Not Found"}

    def _identity(self, path: str) -> Any:
        routes = {
            "vllm": {"/version": {"version": self.version}},
            "sglang": {
                "/get_server_info": {
                    "model_path": f"/models/{self.models[0]}",
                    "tokenizer_path": "x",
                    "revision": self.revision or None,
                    "api_key": self.key or None,
                    "version": self.version,
                    "internal_states": [{}],
                }
            },
            "llama.cpp": {
                "/props": {
                    "default_generation_settings": {"n_ctx": 2048},
                    "total_slots": 1,
                    "model_path": "/models/fake-q4_k_m.gguf",
                    "chat_template": "...",
                    "modalities": {"vision": False},
                    "build_info": self.version,
                }
            },
            "llama-cpp-python": {
                "/openapi.json": {
                    "openapi": "3.1.0",
                    "paths": {},
                    "info": {"title": "🦙 llama.cpp Python API", "version": self.version},
                }
            },
        }
        return routes.get(self.engine, {}).get(path)

    def _card(self, model: str) -> dict[str, Any]:
        card: dict[str, Any] = {"id": model, "object": "model", "created": 1735142223}
        if self.engine == "vllm":
            card.update(owned_by="vllm", root=model, parent=None, max_model_len=2048, permission=[])
        elif self.engine == "sglang":
            card.update(owned_by="sglang", root=model, max_model_len=2048)
        elif self.engine == "llama.cpp":
            card.update(owned_by="llamacpp", meta={"vocab_type": 2, "n_vocab": 262144, "n_ctx_train": 32768})
        elif self.engine == "llama-cpp-python":
            card.update(owned_by="me", permissions=[])
        else:
            card.update(owned_by="system")
        return card

    def _generate(self, chat: bool, body: dict[str, Any], fault: Fault) -> dict[str, Any]:
        prompt = " ".join(m["content"] for m in body["messages"]) if chat else body["prompt"]
        tokens = list(self.reply(prompt))[: body["max_tokens"]]
        finish, matched, text = ("length" if len(tokens) < len(self.reply(prompt)) else "stop"), None, "".join(tokens)
        for stop in body.get("stop") or ():
            if stop in text:
                text, finish, matched = text[: text.index(stop)], "stop", stop
        kept = [t for i, t in enumerate(tokens) if len("".join(tokens[:i])) < len(text)]  # tokens the text shows
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
        choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
        if self.engine == "vllm":
            choice["stop_reason"] = matched
        elif self.engine == "sglang":
            choice["matched_stop"] = matched if matched else 1  # the EOS token id otherwise
        wanted = int(body.get("top_logprobs") or 0) if chat else int(body.get("logprobs") or 0)
        if wanted and not fault.omit_logprobs:
            choice["logprobs"] = _logprobs(kept, wanted, legacy=not chat and self.engine != "llama.cpp")
        else:
            choice["logprobs"] = None
        answer = {
            "id": "cmpl-1",
            "object": "chat.completion" if chat else "text_completion",
            "created": 1,
            "model": body["model"],
            "choices": [choice],
            "usage": {
                "prompt_tokens": len(prompt.split()),
                "completion_tokens": len(kept),
                "total_tokens": len(prompt.split()) + len(kept),
            },
        }
        if self.engine == "llama.cpp":
            answer["system_fingerprint"] = self.version
        return answer


def _logprobs(tokens: list[str], wanted: int, legacy: bool) -> dict[str, Any]:
    """Token i has logprob -0.1*(i+1); alternatives "alt1"… are one nat less likely each (wanted entries in all)."""
    values = [-0.1 * (i + 1) for i in range(len(tokens))]
    tops = [[(t, v)] + [(f"alt{j}", v - j) for j in range(1, wanted)] for t, v in zip(tokens, values)]
    if legacy:  # vLLM / SGLang / OpenAI /v1/completions
        offsets = [len("".join(tokens[:i])) for i in range(len(tokens))]
        return {
            "text_offset": offsets,
            "token_logprobs": values,
            "tokens": tokens,
            "top_logprobs": [dict(reversed(top)) for top in tops],
        }  # dicts in no particular order
    return {
        "content": [
            {
                "token": t,
                "logprob": v,
                "bytes": list(t.encode()),
                "top_logprobs": [{"token": a, "logprob": w, "bytes": list(a.encode())} for a, w in top],
            }
            for t, v, top in zip(tokens, values, tops)
        ]
    }


def _error(handler: BaseHTTPRequestHandler, status: int, message: str) -> None:
    body = {
        "error": {
            "message": message,
            "type": "BadRequestError" if status < 500 else "InternalServerError",
            "param": None,
            "code": status,
        }
    }
    _send(handler, status, json.dumps(body).encode(), "application/json")


def _send(handler: BaseHTTPRequestHandler, status: int, raw: bytes, content_type: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(raw)))
    handler.end_headers()
    handler.wfile.write(raw)
