"""Model variants (`tuned`, `base:raw`, `base:tuned-format`): how a role is given a conversation, for generate and evaluate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

RAW, FORMAT = "raw", "-format"  # ROLE:raw, ROLE:OTHER-format


class Broken(ValueError):
    """A fence option or a line of a set that cannot be used: what, and the fix (the caller adds where)."""

    def __init__(self, what: str, fix: str) -> None:
        super().__init__(what)
        self.what, self.fix = what, fix


@dataclass(frozen=True)
class Variant:
    """How one model is given a conversation: `tuned` (its chat template), `base:raw` (the texts joined by blank
    lines), or `base:tuned-format` (exactly the text the tuned model's chat template makes, given to base as raw text)."""

    name: str
    role: str
    layout: str  # "chat", "raw", or the role whose turn format is applied
    turn_format: str = ""  # the recipe's template name (gemma, chatml) when layout is another role's format

    @property
    def label(self) -> str:
        if self.layout == "chat":
            return f"{self.role} (its chat template)"
        if self.layout == RAW:
            return f"{self.role}, raw text"
        return f"{self.role} in {self.layout}'s turn format"

    @property
    def attribute(self) -> str:
        """How a claim reads its answer in a generate block: `q.base_tuned_format` for model=base:tuned-format."""
        return self.name.replace(":", "_").replace("-", "_")


def variant(text: str, roles: Sequence[str], formats: Mapping[str, str]) -> Variant:
    """ROLE, ROLE:raw or ROLE:TUNED-format, checked against the configured roles and the tuned roles' turn formats."""
    role, _, layout = text.strip().partition(":")
    fix = (
        f"write ROLE (its chat template), ROLE:raw or ROLE:TUNED-format, with roles from {', '.join(roles)}; "
        "e.g. base:raw,base:tuned-format,tuned,instruct"
    )
    if role not in roles:
        raise Broken(f"variant {text!r} names unknown model {role!r}", fix)
    if not layout:
        return Variant(role, role, "chat")
    if layout == RAW:
        return Variant(text, role, RAW)
    other = layout[: -len(FORMAT)] if layout.endswith(FORMAT) else ""
    if not other:
        raise Broken(f"variant {text!r}: {layout!r} is not a layout", fix)
    if other not in formats:
        raise Broken(
            f"variant {text!r}: {other!r} is not a tuned model, so its turn format is not known without loading it",
            f"use the turn format of a role configured with tune: ({', '.join(formats) or 'none'})",
        )
    return Variant(text, role, other, formats[other])


def laid_out(v: Variant, messages: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The generate-block fields that give a raw or turn-formatted variant the conversation `messages` (an optional
    system turn, then user, assistant, ..., user): the text is sent as a raw prompt, so the exact-input display
    shows it. A chat variant has no layout of its own (the caller keeps its chat fields)."""
    if v.layout == "chat":
        raise ValueError(f"{v.name} is given the conversation through its own chat template")
    if v.layout == RAW:
        return {"source": "\n\n".join(content for _, content in messages), "template": "raw"}
    from ..core.templates import TEMPLATES, prompt_text  # only a turn-formatted variant needs them

    template = TEMPLATES[v.turn_format]
    return {"source": prompt_text(template, list(messages)), "template": "raw", "stop": (template.end,)}


def generate_as(block: Any, v: Variant) -> Any:
    """A generate block as the variant's model is asked it: unchanged for ROLE; for ROLE:raw or ROLE:TUNED-format,
    its system message, earlier turns and prompt laid out as one raw prompt (the block's stop strings kept)."""
    if v.layout == "chat":
        return block
    asked = block.request
    turns = (("system", asked.system),) if asked.system else ()
    fields = laid_out(v, turns + tuple(asked.history) + (("user", asked.prompt),))
    request = replace(
        asked,
        prompt=fields["source"],
        template="raw",
        system="",
        messages=(),
        stop=tuple(dict.fromkeys(asked.stop + fields.get("stop", ()))),
    )
    return replace(block, source=fields["source"], request=request)
