"""Is a re-executed outcome the same as its lockfile entry? Text exactly, floating-point numbers within a tolerance."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from ..vocabulary import FIGURE

RELATIVE = 1e-4  # the same model files on another CPU (AVX2 for AVX-512): measured, see README
RETRAINED = 5e-3  # outputs of a tuned model retrained on another CPU (other weights sha256): measured, see README
EXACT = ("models_used", "input_text", "text", "finish_reason", "new_tokens")  # generated text, token counts: exact
RULE = (
    f"generated text, token counts and every character of printed text but numbers are compared exactly; "
    f"floating-point numbers (noted values; printed numbers with a decimal point or an exponent; a figure's "
    f"data) within a relative {RELATIVE:g}, and a printed number also within one unit of its last printed digit "
    f"(a rounding flip); where a tuned model's weights differ (retrained on another CPU: another sha256), its "
    f"outputs' numbers within a relative {RETRAINED:g} or one unit of their last digit; figure images and tuned "
    f"weights' hashes are provenance, not compared"
)

# A number with a decimal point or an exponent, standing alone (not inside a word, a hash or a version like 5.24.0).
_FLOAT = re.compile(r"(?<![\w.])(-?(?:\d+\.\d*|\.\d+|\d+(?=[eE]))(?:[eE][-+]?\d+)?)(?![\w.])")


@dataclass(frozen=True)
class Difference:
    """The first difference beyond the tolerance: in which field, where in it, the two sides, and why it counts."""

    field: str  # "output", "text", "notes.margins.base[0]", "rich[0].figure.axes[0].lines[0]" ...
    before: str
    after: str
    why: str
    line: int = 1  # 1-based, within a text field
    column: int = 1


def compare(old: dict[str, Any], new: dict[str, Any]) -> Difference | None:
    """A lockfile entry against a re-execution of its block: the first difference beyond the tolerance, or None."""
    return difference(old.get("outcome") or {}, new.get("outcome") or {}, relative=relative(old, new))


def relative(old: dict[str, Any], new: dict[str, Any]) -> float:
    """RELATIVE, or RETRAINED where a tuned model's weights (sha256) differ: trained on another CPU."""
    return RETRAINED if retrained(old, new) else RELATIVE


def retrained(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The roles whose tuned weights differ between the two entries (both record a hash, and they differ)."""
    before, after = old.get("models") or {}, new.get("models") or {}
    return [
        role
        for role, model in after.items()
        if isinstance(model, dict)
        and model.get("weights_sha256")
        and (before.get(role) or {}).get("weights_sha256") not in (None, model["weights_sha256"])
    ]


def same(old: dict[str, Any], new: dict[str, Any], *, relative: float = RELATIVE) -> bool:
    """Whether a reader sees the same outcome (time taken, batch size and images excluded)."""
    return difference(old, new, relative=relative) is None


def difference(old: dict[str, Any], new: dict[str, Any], *, relative: float = RELATIVE) -> Difference | None:
    """The first observable difference between two stored outcomes, or None when they agree within the tolerance."""
    for name in EXACT:
        a, b = old.get(name), new.get(name)
        if _canonical(a) != _canonical(b):
            if isinstance(a, str) and isinstance(b, str):
                line, column = _position(a, _first(a, b))
                return Difference(name, _line(a, line), _line(b, line), "text is compared exactly", line, column)
            return Difference(name, _short(a), _short(b), "compared exactly")
    found = text_difference("output", old.get("output") or "", new.get("output") or "", relative)
    found = found or value_difference("notes", old.get("notes") or {}, new.get("notes") or {}, relative)  # older: none
    found = found or value_difference(
        "positions", list(old.get("positions") or []), list(new.get("positions") or []), relative
    )  # a rank job's scores: ranks and tokens exact, probabilities within
    return found or _rich_difference(list(old.get("rich") or []), list(new.get("rich") or []), relative)


def text_difference(field: str, old: str, new: str, relative: float = RELATIVE) -> Difference | None:
    """Printed text: every character but the floats identical, and each pair of floats within the tolerance."""
    if old == new:
        return None
    a, b = _FLOAT.split(old), _FLOAT.split(new)  # [text, number, text, number, ..., text]
    offset = 0
    for i, (x, y) in enumerate(zip(a, b)):
        why = "text is compared exactly" if i % 2 == 0 and x != y else "" if i % 2 == 0 else _printed(x, y, relative)
        if why:
            line, column = _position(old, offset + (_first(x, y) if i % 2 == 0 else 0))
            why = why if i % 2 == 0 else f"{x} is now {y}: {why}"
            return Difference(field, _line(old, line), _line(new, line), why, line, column)
        offset += len(x)
    if len(a) == len(b):
        return None
    line, column = _position(old, offset)  # one has more numbers than the other
    return Difference(field, _line(old, line), _line(new, line), "text is compared exactly", line, column)


def value_difference(field: str, old: Any, new: Any, relative: float = RELATIVE) -> Difference | None:
    """Noted values and figure data (JSON): structure, strings, integers and booleans exact; floats within RELATIVE."""
    if isinstance(old, dict) and isinstance(new, dict):
        if list(sorted(old)) != list(sorted(new)):
            return Difference(field, _short(old), _short(new), "the names differ")
        return next((d for k in sorted(old) if (d := value_difference(f"{field}.{k}", old[k], new[k], relative))), None)
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        if len(old) != len(new):
            return Difference(field, _short(old), _short(new), f"{len(old)} values, now {len(new)}")
        found = (value_difference(f"{field}[{i}]", x, y, relative) for i, (x, y) in enumerate(zip(old, new)))
        return next((d for d in found if d), None)
    if isinstance(old, str) and isinstance(new, str):
        in_text = text_difference(field, old, new, relative)
        return in_text and Difference(field, _short(old), _short(new), in_text.why)
    if _is_float(old, new):
        if close(float(old), float(new), relative):
            return None
        if relative > RELATIVE and not _printed(repr(old), repr(new), relative):
            return None  # retrained weights: a value the snippet rounded (0.0031) may also flip its last digit
        why = f"differs by {_relative(old, new):.2g} relative, beyond {relative:g}"
        return Difference(field, repr(old), repr(new), why)
    if type(old) is not type(new) or old != new:
        return Difference(field, _short(old), _short(new), "compared exactly")
    return None


def close(a: float, b: float, relative: float = RELATIVE) -> bool:
    return math.isclose(a, b, rel_tol=relative, abs_tol=1e-12)


def _printed(a: str, b: str, relative: float = RELATIVE) -> str:
    """'' when two printed numbers agree: within RELATIVE, or one unit of the last digit printed in both."""
    x, y = float(a), float(b)
    if close(x, y, relative):
        return ""
    unit = _unit(a)
    if unit == _unit(b) and abs(x - y) <= unit * (1 + 1e-9):
        return ""
    return (
        f"differs by {abs(x - y):.3g} ({_relative(x, y):.2g} relative), beyond {relative:g} relative and one unit "
        f"of its last printed digit ({unit:g})"
    )


def _unit(number: str) -> float:
    mantissa, _, exponent = number.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def _rich_difference(old: list[dict[str, str]], new: list[dict[str, str]], relative: float) -> Difference | None:
    """Displayed values and figures: every representation but the PNG, a figure by the data it was drawn from."""
    if len(old) != len(new):
        return Difference("rich", f"{len(old)} displayed value(s)", f"{len(new)}", "the number of figures or values")
    for i, (a, b) in enumerate(zip(old, new)):
        if sorted(set(a) - {"image/png"}) != sorted(set(b) - {"image/png"}):
            return Difference(
                f"rich[{i}]",
                _short(sorted(a)),
                _short(sorted(b)),
                "the representations differ (an entry from before figures recorded their data)",
            )
        for mime in sorted(set(a) - {"image/png"}):
            found = (
                value_difference(f"rich[{i}].figure", json.loads(a[mime]), json.loads(b[mime]), relative)
                if mime == FIGURE
                else text_difference(f"rich[{i}].{mime}", a[mime], b[mime], relative)
            )
            if found:
                return found
    return None


def _is_float(a: Any, b: Any) -> bool:
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    return numbers and (isinstance(a, float) or isinstance(b, float))


def _relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)  # lists and tuples compare equal


def _first(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def _position(text: str, index: int) -> tuple[int, int]:
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


def _line(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line - 1] if line <= len(lines) else ""


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text[:200] + ("…" if len(text) > 200 else "")
