"""What checked claims read: a page's named block results as plain values (text, finish reason, tokens, output)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.protocol import CodeOutcome, GenerateOutcome

_UNAVAILABLE = {
    "unexecuted": "its block has no lockfile entry and was not executed in this build",
    "skipped": "its block did not run (an earlier block on the page failed)",
    "pending": "pending: its answer is being generated (mkdocs serve); checked once the page reloads with it",
}


@dataclass(frozen=True)
class Answer:
    """One model's generation, as a claim sees it: `q.base.finish_reason == "length"`, `"Paris" in q.instruct.text`."""

    model: str
    text: str
    finish_reason: str  # "eos": the model ended its turn; "length": max_new_tokens cut it off
    new_tokens: int
    input_tokens: int
    input_text: str
    max_new_tokens: int

    @property
    def ended_turn(self) -> bool:
        return self.finish_reason == "eos"

    @property
    def hit_limit(self) -> bool:
        return self.finish_reason == "length"

    @property
    def lines(self) -> list[str]:
        return [line for line in self.text.split("\n") if line.strip()]

    @property
    def first_line(self) -> str:
        return (self.lines or [""])[0].strip()


class Unavailable(Exception):
    """A check read an answer this build does not have (not executed, failed): its claim is left unchecked."""


class Generated:
    """A generate block's answers by role (`q.base`, `q.instruct`); with one model, its fields directly (`q.text`).
    A role whose answer is missing (`missing`: role -> why) raises Unavailable when read, so the claims about the
    other roles are still checked; `unavailable` is set when no answer at all is there."""

    def __init__(
        self, where: str, answers: dict[str, Answer], unavailable: str = "", missing: dict[str, str] | None = None
    ) -> None:
        self._where, self._answers, self.unavailable, self._missing = where, answers, unavailable, missing or {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._answers:
            return self._answers[name]
        if name in self._missing:
            raise Unavailable(self._missing[name])
        if len(self._answers) == 1 and not self._missing:
            return getattr(next(iter(self._answers.values())), name)
        raise AttributeError(
            f"the generate block at {self._where} has answers from {', '.join(self._answers)}, "
            f"so write e.g. .{next(iter(self._answers))}.{name}"
        )

    def __repr__(self) -> str:
        return f"<generate block {self._where}: {', '.join(self._answers)}>"


class Notes(dict):
    """Values a code block published with note(name=value); readable as `r.notes.name` or `r.notes["name"]`."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no note {name!r} (the block noted: {', '.join(self) or 'nothing'})") from None


@dataclass(frozen=True)
class Ran:
    """A code block's or notebook cell's result: `r.output` (what it printed), `r.notes.x` (what it noted)."""

    output: str
    notes: Notes
    unavailable: str = ""

    @property
    def lines(self) -> list[str]:
        return [line for line in self.output.split("\n") if line.strip()]


def generated(where: str, columns: list[tuple[str, GenerateOutcome, int]]) -> Generated:
    """Answers by column: a role (`q.base`), or a variant read as a name (`q.base_tuned_format` for base:tuned-format)."""
    answers, missing, first = {}, {}, ""
    for column, outcome, limit in columns:
        role = column.replace(":", "_").replace("-", "_")
        if outcome.status != "ok":
            reason = _UNAVAILABLE.get(outcome.status, f"its {role} answer failed ({outcome.status})")
            first = first or reason
            missing[role] = reason.replace("its block", f"the {role} answer of its block", 1)
            continue
        answers[role] = Answer(
            column,
            outcome.text,
            outcome.finish_reason,
            outcome.new_tokens,
            outcome.input_tokens,
            outcome.input_text,
            limit,
        )
    return Generated(where, answers, "" if answers else first, missing)


def ran(outcome: CodeOutcome) -> Ran:
    if outcome.status != "ok":
        return Ran("", Notes(), _UNAVAILABLE.get(outcome.status, f"its block failed ({outcome.status})"))
    return Ran(outcome.output, Notes(getattr(outcome, "notes", None) or {}))
