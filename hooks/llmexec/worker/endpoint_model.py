"""Worker side: a model on a serving engine, with the snippet API of a loaded model (generate, chat, next_tokens)."""

from __future__ import annotations

import math
from typing import Any

from ..core.models import ModelSpec
from ..core.request import Request
from ..endpoint.answers import Completion
from ..endpoint.client import EndpointClient, ServerInfo, run_concurrently
from ..endpoint.transport import Endpoint, EndpointError
from ..errors import with_fix
from .decoding import Generation
from .endpoint_requests import decoding, describe, finish, payload, shown


class EndpointModel:
    """Raw prompts go to /v1/completions as given; chat goes to /v1/chat/completions as messages, and the server
    applies the model's own chat template (the page shows the messages sent, and says so). Greedy by default."""

    def __init__(self, spec: ModelSpec, client: EndpointClient, info: ServerInfo) -> None:
        self.spec, self.role, self.artifact = spec, spec.role, spec.artifact
        self.options = spec.endpoint_options()
        self.client, self.info = client, info
        self.has_chat_template = bool(self.options["chat"])
        self.training: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<{self.role} model: {self.artifact}>"

    def format_prompt(
        self,
        prompt: str | list[dict[str, str]] = "",
        *,
        template: str = "auto",
        system: str = "",
        prefill: str = "",
        generation_prompt: bool = True,
    ) -> str:
        """What is sent: the raw text, or the chat messages as JSON (the server lays them out in its template)."""
        sent = self._payload(
            Request.of(prompt, template=template, system=system, prefill=prefill, generation_prompt=generation_prompt)
        )
        return sent if isinstance(sent, str) else shown(sent)

    def _payload(self, p: Request) -> str | list[dict[str, str]]:
        return payload(p, self.role, self.artifact, self.has_chat_template)

    def _send(self, payload: str | list[dict[str, str]], **options: Any) -> Completion:
        return (
            self.client.complete(payload, **options)
            if isinstance(payload, str)
            else self.client.chat(payload, **options)
        )

    def generate(
        self, prompt: str | list[dict[str, str]] = "", *, max_new_tokens: int = 48, **options: Any
    ) -> Generation:
        """One request: greedy (temperature 0) unless seed= asks for a draw; the options of a local model's."""
        result = self.generate_each([Request.of(prompt, max_new_tokens=max_new_tokens, **options)])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def chat(
        self, message: str | list[dict[str, str]], *, system: str = "", max_new_tokens: int = 48, **options: Any
    ) -> Generation:
        return self.generate(message, template="chat", system=system, max_new_tokens=max_new_tokens, **options)

    def generate_batch(self, prompts: list[Request]) -> list[Generation]:
        results = self.generate_each(prompts)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return [r for r in results if not isinstance(r, Exception)]  # all are Generations

    def generate_each(self, prompts: list[Request]) -> list[Generation | Exception]:
        """Concurrent requests (at most endpoint.concurrency at once): the engine batches them itself. Each
        prompt's failure is its own."""

        def one(p: Request) -> Generation:
            options = decoding(
                p, self.role, self.info.engine
            )  # a refused option is reported before the prompt's faults
            sent = self._payload(p)
            done = self._send(sent, **options)
            return Generation(
                self.role,
                self.artifact,
                sent if isinstance(sent, str) else shown(sent),
                done.prompt_tokens,
                done.text,
                finish(done),
                done.completion_tokens,
                round(done.seconds, 3),
                describe(p, self.info),
            )

        return run_concurrently(one, prompts, int(self.options["concurrency"]))

    def next_tokens(
        self,
        text: str | list[dict[str, str]],
        k: int = 5,
        *,
        template: str = "raw",
        system: str = "",
        prefill: str = "",
    ) -> list[tuple[str, float]]:
        """The k most likely next tokens with their probabilities, from the server's log-probabilities."""
        sent = self._payload(Request.of(text, template=template, system=system, prefill=prefill))
        done = self._send(sent, max_tokens=1, temperature=0.0, logprobs=k)
        if not done.tokens or not done.tokens[0].top:
            raise EndpointError(
                with_fix(
                    f"model '{self.role}': the server returned no log-probabilities for next_tokens()",
                    "serve the model with an engine that returns `logprobs` (vLLM, SGLang and llama.cpp's server do)",
                )
            )
        return [(token, round(math.exp(lp), 4) if lp is not None else 0.0) for token, lp in done.tokens[0].top[:k]]

    def provenance(self) -> dict[str, str]:
        """The engine and the served model as the server reports them; never the URL or the key."""
        info = {
            "role": self.role,
            "artifact": self.artifact,
            "source": "endpoint (OpenAI-compatible API)",
            "identity": self.spec.identity,
            "engine": self.info.engine,
            "engine version": self.info.engine_version,
            "served model": self.info.model_id,
            "chat template": "the server's" if self.has_chat_template else "no",
        }
        if self.info.model_revision:
            info["revision"] = self.info.model_revision
        if self.info.model_path:
            info["model file"] = self.info.model_path.rsplit("/", 1)[-1]
        return info


def connect(spec: ModelSpec, contact: bool, keys: dict[str, str]) -> EndpointModel:
    """Check the server: it is reachable, serves the model, and runs the engine and version that mkdocs.yml pins
    (they key the outputs). `contact` is False in preview builds, which never reach a serving engine."""
    options = spec.endpoint_options()
    if not contact:
        raise EndpointError(
            with_fix(
                f"model '{spec.role}' is on a serving engine, and preview builds never contact one",
                "its outputs come from the lockfile: run `make lock` on a trusted machine",
            )
        )
    endpoint = Endpoint(
        options["url"],
        spec.ref,
        spec.revision,
        options["api_key_env"],
        int(options["concurrency"]),
        float(options["timeout"]),
        int(options["retries"]),
    )
    client = EndpointClient(endpoint, spec.role, keys)  # the build's environment, not the worker's (see runner)
    info = client.describe()
    reported = f"{info.engine} {info.engine_version}".strip()
    if reported != options["engine"]:
        raise EndpointError(
            with_fix(
                f"model '{spec.role}' (endpoint {endpoint.host_port}): the server runs {reported!r}, but mkdocs.yml pins "
                f"engine: {options['engine']!r} (the engine and its version key every output of this model)",
                f"set endpoint.engine: {reported!r} in mkdocs.yml (its blocks then execute again), or serve with the "
                "pinned engine",
            )
        )
    if spec.revision and info.model_revision and info.model_revision != spec.revision:
        raise EndpointError(
            with_fix(
                f"model '{spec.role}' (endpoint {endpoint.host_port}): the server reports revision "
                f"{info.model_revision!r}, mkdocs.yml pins {spec.revision!r}",
                "pin the served revision, or serve the pinned one",
            )
        )
    if info.engine in ("llama-cpp-python", "llama.cpp"):  # they penalise repeats unless told not to: not greedy
        client.extra = {"repeat_penalty": 1.0}
    return EndpointModel(spec, client, info)
