"""```generate``` fences: the model= columns, the template, the length and the decoding, checked into one Request."""

from __future__ import annotations

import re
from typing import TypedDict

from ..core.request import Request
from ..vocabulary import DISPLAY_ORDER, MAX_NEW_TOKENS, MODEL_SETS, TEMPLATES, Template, max_new_tokens_problem
from .options import Block, Problem, name_option, timeout_option, unknown_options
from .variants import Broken, Variant, variant

OPTIONS = {
    "model",
    "max_new_tokens",
    "system",
    "template",
    "timeout",
    "id",
    "prefill",
    "stop",
    "seed",
    "temperature",
    "top_p",
    "generation_prompt",
    "repetition_penalty",
}
_ESCAPES = {"\\n": "\n", "\\t": "\t", "\\\\": "\\"}  # what stop="\n" and prefill="...\n" mean
_TEMPLATES: dict[str, Template] = {t: t for t in TEMPLATES}


class Decoding(TypedDict, total=False):
    """The decoding options a fence set, as Request's fields."""

    seed: int
    temperature: float
    top_p: float
    repetition_penalty: float
    generation_prompt: bool


def generate_block(
    options: dict[str, str], body: list[str], *, page: str, line: int, roles: tuple[str, ...], formats: dict[str, str]
) -> Block | Problem:
    """A generate fence as a Block whose Request is built once here, or the Problem that stops it."""
    if problem := unknown_options(options, OPTIONS, "generate", page, line):
        return problem
    timeout = timeout_option(options, page, line)
    if isinstance(timeout, Problem):
        return timeout
    if problem := name_option(options, page, line):
        return problem
    model = options.get("model", "both")
    chosen = {**MODEL_SETS, "all": tuple(r for r in DISPLAY_ORDER if r in roles)}.get(model)
    chosen = chosen or tuple(m.strip() for m in model.split(","))
    if unknown := [r for r in chosen if r.partition(":")[0] not in roles]:
        return Problem(
            page,
            line,
            f"generate block names unknown model {unknown[0]!r}",
            f"use model= one of {', '.join(roles)}, a list such as model=base,{roles[-1]}, model=both "
            "(base and instruct) or model=all (the roles configured under extra.llm_exec.models in mkdocs.yml)",
        )
    columns = _variants(chosen, options, page, line, roles, formats)
    if isinstance(columns, Problem):
        return columns
    template = _TEMPLATES.get(options.get("template", "auto"))
    if template is None:
        return Problem(
            page,
            line,
            f"template={options['template']!r} is not a template mode",
            "use template=auto (chat template for models that have one), template=chat or template=raw",
        )
    max_new = 0  # the site's max_new_tokens
    if "max_new_tokens" in options:
        if not options["max_new_tokens"].isdigit() or max_new_tokens_problem(int(options["max_new_tokens"])):
            low, high = MAX_NEW_TOKENS
            return Problem(
                page,
                line,
                f"max_new_tokens={options['max_new_tokens']!r} is not a whole number from {low} to {high}",
                "write e.g. max_new_tokens=40",
            )
        max_new = int(options["max_new_tokens"])
    prompt = normalize_prompt("\n".join(body))
    if not prompt:
        return Problem(page, line, "this generate block has no prompt", "write the prompt between the fences")
    decoding = _decoding(options, page, line)
    if isinstance(decoding, Problem):
        return decoding
    stop = tuple(_unescape(s) for s in options["stop"].split("\x1f")) if "stop" in options else ()
    request = Request(
        prompt,
        template,
        options.get("system", ""),
        _unescape(options.get("prefill", "")),
        stop=stop,
        max_new_tokens=max_new,
        **decoding,
    )
    return Block(
        "generate",
        page,
        line,
        0,
        0,
        "",
        prompt,
        page,
        line + 1,
        timeout=timeout,
        models=chosen,
        name=options.get("id", ""),
        request=request,
        variants=columns,
        options=options,
    )


def _variants(
    chosen: tuple[str, ...],
    options: dict[str, str],
    page: str,
    line: int,
    roles: tuple[str, ...],
    formats: dict[str, str],
) -> tuple[Variant, ...] | Problem:
    """Each model= column parsed: a role, or a variant such as base:tuned-format (the role given the request in the
    tuned model's turn format, as raw text) or base:raw."""
    if len(set(chosen)) != len(chosen):
        return Problem(page, line, f"model={options.get('model')!r} names a model twice", "name each model once")
    try:
        columns = tuple(
            variant(name, roles, formats) if ":" in name else Variant(name, name, "chat") for name in chosen
        )
    except Broken as broken:
        return Problem(page, line, f"model= {broken.what}", broken.fix)
    if options.get("generation_prompt") == "false" and (v := next((v for v in columns if v.turn_format), None)):
        return Problem(
            page,
            line,
            f"model={v.name} gives the request in the tuned turn format, which opens the "
            "model's turn, so generation_prompt=false cannot apply",
            "drop generation_prompt=false, or that model",
        )
    return columns


def _unescape(text: str) -> str:
    return re.sub(r"\\[nt\\]", lambda m: _ESCAPES[m.group(0)], text)


def _decoding(options: dict[str, str], page: str, line: int) -> Decoding | Problem:
    """seed= turns on sampling (reproducible: the seed is part of the key); temperature= and top_p= need it;
    repetition_penalty= applies to greedy decoding and sampling alike."""
    found: Decoding = {}
    if "seed" in options:
        if not options["seed"].isdigit():
            return Problem(page, line, f"seed={options['seed']!r} is not a whole number", "write e.g. seed=1")
        found["seed"] = int(options["seed"])
    for name, low, high in (("temperature", 0.0, 5.0), ("top_p", 0.0, 1.0)):
        if name not in options:
            continue
        if "seed" not in options:
            return Problem(
                page,
                line,
                f"{name}= only applies to sampling, and sampling needs a seed to be reproducible",
                f"add seed=N (e.g. seed=1) to sample, or drop {name}= for greedy decoding",
            )
        try:
            value = float(options[name])
        except ValueError:
            value = -1.0
        if not low < value <= high:
            return Problem(
                page,
                line,
                f"{name}={options[name]!r} is not a number above {low:g} and at most {high:g}",
                f"write e.g. {name}={0.8 if name == 'temperature' else 0.95}",
            )
        if name == "temperature":
            found["temperature"] = value
        else:
            found["top_p"] = value
    if "repetition_penalty" in options:
        try:
            penalty = float(options["repetition_penalty"])
        except ValueError:
            penalty = -1.0
        if not 0.0 < penalty <= 5.0:
            return Problem(
                page,
                line,
                f"repetition_penalty={options['repetition_penalty']!r} is not a number above 0 and at most 5",
                "write e.g. repetition_penalty=1.3 (1 leaves repeats alone; "
                "above 1 makes tokens already seen less likely)",
            )
        found["repetition_penalty"] = penalty
    if "generation_prompt" in options:
        if options["generation_prompt"] not in ("true", "false"):
            return Problem(
                page,
                line,
                f"generation_prompt={options['generation_prompt']!r} is not true or false",
                "write generation_prompt=false to leave the assistant's turn unopened",
            )
        found["generation_prompt"] = options["generation_prompt"] == "true"
    return found


def normalize_prompt(text: str) -> str:
    """Prompts are kept exactly (spaces are tokens) except line endings and surrounding blank lines."""
    return text.replace("\r\n", "\n").strip("\n")
