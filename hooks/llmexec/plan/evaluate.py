"""```evaluate``` fences: an evaluation set read and checked, its variants, and one generate request per (item, variant)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..core.request import Request
from ..vocabulary import max_new_tokens_problem
from .options import Block, Problem, name_option, options_block, timeout_option, unknown_options
from .variants import Broken, Variant, laid_out, variant

OPTIONS = {"file", "scorers", "variants", "id", "timeout"}


@dataclass(frozen=True)
class Item:
    """One request of an evaluation set, as the scorers get it (`score(item, reply)`): the same fields as a line."""

    id: str
    kind: str
    messages: tuple[tuple[str, str], ...]  # (role, content): an optional system turn, then user, assistant, ..., user
    max_new_tokens: int
    success: Mapping[str, Any]
    line: int

    def chat(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]


@dataclass(frozen=True)
class Evaluation:
    """What an evaluate fence asks for: the set (already read), the scorers' file and the variants, in column order."""

    file: str  # relative to mkdocs.yml, as written on the fence
    scorers: str
    scorers_path: Path
    items: tuple[Item, ...]
    variants: tuple[Variant, ...]

    @property
    def kinds(self) -> list[str]:
        return list(dict.fromkeys(item.kind for item in self.items))


def evaluate_block(
    options: dict[str, str],
    body: list[str],
    *,
    page: str,
    line: int,
    project_dir: Path,
    roles: tuple[str, ...],
    formats: Mapping[str, str],
) -> Block | Problem:
    """An evaluation set on several variants: one generate request per (item, variant), expanded by the planner."""
    if problem := unknown_options(options, OPTIONS, "evaluate", page, line):
        return problem
    if "\n".join(body).strip():
        return Problem(page, line, "an evaluate block takes no text between its fences", "put the requests in file=")
    timeout = timeout_option(options, page, line)
    if isinstance(timeout, Problem):
        return timeout
    if problem := name_option(options, page, line):
        return problem
    try:
        found = parse(options, project_dir, roles, formats)
    except Broken as broken:
        return Problem(page, line, broken.what, broken.fix)
    return options_block("evaluate", page, line, options, timeout=timeout, title=found.file, evaluation=found)


def parse(options: dict[str, str], project_dir: Path, roles: tuple[str, ...], formats: Mapping[str, str]) -> Evaluation:
    """The fence's options checked and the set read; raises Broken (a line of the set names its file:line)."""
    for name in ("file", "scorers", "variants"):
        if not options.get(name):
            raise Broken(
                f"an evaluate block needs {name}=",
                "write e.g. ```evaluate file=tuning/evaluation.jsonl scorers=tuning/scorers.py "
                "variants=base:raw,tuned id=heldout",
            )
    paths = {}
    for name in ("file", "scorers"):
        paths[name] = (project_dir / options[name]).resolve()
        if not paths[name].is_file():
            raise Broken(
                f"{name}={options[name]!r} not found (looked at {paths[name]})",
                f"{name}= is relative to the folder of mkdocs.yml",
            )
    variants = tuple(variant(text, roles, formats) for text in options["variants"].split(","))
    if len({v.name for v in variants}) != len(variants):
        raise Broken(f"variants={options['variants']!r} names a variant twice", "name each variant once")
    return Evaluation(
        options["file"], options["scorers"], paths["scorers"], read_items(paths["file"], options["file"]), variants
    )


def read_items(path: Path, shown: str) -> tuple[Item, ...]:
    """Every line of the set, checked for what running it needs (the scorers judge `success`); `shown:line` errors."""
    items: list[Item] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = _item(line, number)
            if item.id in seen:
                raise Broken(
                    f"the id {item.id!r} is already used on line {seen[item.id]}", "give each request its own id"
                )
        except Broken as broken:
            raise Broken(f"{shown}:{number}: {broken.what}", broken.fix) from None
        seen[item.id] = number
        items.append(item)
    if not items:
        raise Broken(f"{shown} holds no request", "write one JSON object per line")
    return tuple(items)


_FIX = (
    'each line is {"id": "fact-01", "kind": "fact", "messages": [{"role": "user", "content": "..."}], '
    '"max_new_tokens": 12, "success": {...}}'
)


def _item(line: str, number: int) -> Item:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise Broken(f"not JSON ({exc})", _FIX) from None
    if not isinstance(record, dict) or not {"id", "kind", "messages", "max_new_tokens", "success"} <= set(record):
        raise Broken("a request needs the fields id, kind, messages, max_new_tokens and success", _FIX)
    if not all(isinstance(record[k], str) and record[k].strip() for k in ("id", "kind")):
        raise Broken("'id' and 'kind' must be non-empty strings", _FIX)
    if max_new_tokens_problem(record["max_new_tokens"]):
        raise Broken(
            f"'max_new_tokens' {max_new_tokens_problem(record['max_new_tokens'])}", 'write e.g. "max_new_tokens": 16'
        )
    messages = record["messages"]
    if not (
        isinstance(messages, list)
        and messages
        and all(
            isinstance(m, dict) and set(m) == {"role", "content"} and isinstance(m["content"], str) for m in messages
        )
    ):
        raise Broken('\'messages\' must be a non-empty list of {"role": ..., "content": ...}', _FIX)
    turns = tuple((m["role"], m["content"]) for m in messages)
    body = turns[1:] if turns[0][0] == "system" else turns
    if [role for role, _ in body] != ["user", "assistant"] * (len(body) // 2) + ["user"]:
        raise Broken(
            "the turns must alternate user, assistant, ... and end with the user's question",
            "optionally a system message first, then user, assistant, ..., user",
        )
    if not isinstance(record["success"], dict):
        raise Broken("'success' must be an object (what the scorers read)", _FIX)
    return Item(record["id"], record["kind"], turns, record["max_new_tokens"], record["success"], number)


def request(item: Item, v: Variant) -> dict[str, Any]:
    """The generate-block fields that give `item` to the variant's model: keyed exactly like a generate block with
    these options (an item without earlier turns is the same answer as ```generate model=ROLE template=...```)."""
    system = item.messages[0][1] if item.messages[0][0] == "system" else ""
    body = item.messages[1:] if system else item.messages
    if v.layout == "chat":
        return {"source": body[-1][1], "system": system, "template": "chat", "history": body[:-1]}
    return laid_out(v, item.messages)


def with_request(block: Any, item: Item, v: Variant) -> Any:
    """The evaluate block turned into the generate block that asks one item of one variant."""
    fields: dict[str, Any] = {"system": "", "stop": (), "history": ()} | request(item, v)
    source, history = fields["source"], tuple(fields["history"])
    asked = Request(
        source,
        fields["template"],
        fields["system"],
        messages=history + (("user", source),) if history else (),
        stop=fields["stop"],
        max_new_tokens=item.max_new_tokens,
    )
    return replace(block, kind="generate", source=source, models=(v.role,), evaluation=None, options={}, request=asked)
