"""The checks a setting's value goes through, and a mapping validated against a schema of (default, check)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = Callable[[Any], str]  # '' when the value is fine, else what is wrong with it
Schema = dict[str, tuple[Any, Check]]  # key: (default, check); a default of None means required


def kind(*types: type, name: str) -> Check:
    return lambda v: (
        ""
        if isinstance(v, types) and not (isinstance(v, bool) and bool not in types)
        else f"expected {name}, got {type(v).__name__} {v!r}"
    )


def choice(*choices: str) -> Check:
    shown = ", ".join(c for c in choices if c)
    return lambda v: "" if v in choices else f"expected one of {shown}, got {v!r}"


def positive(name: str) -> Check:
    number = kind(int, float, name=name)
    return lambda v: number(v) or ("" if v > 0 else f"must be a positive {name}, got {v!r}")


STRING, NUMBER, INTEGER, BOOLEAN = (
    kind(str, name="text"),
    kind(int, float, name="a number"),
    kind(int, name="a whole number"),
    kind(bool, name="true or false"),
)


def validate(raw: Any, schema: Schema, where: str, problems: list[str]) -> dict[str, Any]:
    """The values with defaults filled in; every unknown key, missing key and bad value goes to `problems`."""
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping, got {type(raw).__name__}")
        return {key: default for key, (default, _) in schema.items()}
    values = {}
    for key in sorted(set(raw) - set(schema)):
        problems.append(f"{where}.{key}: unknown key (the keys here are: {', '.join(schema)})")
    for key, (default, check) in schema.items():
        if key not in raw or raw[key] is None:
            if default is None:
                problems.append(f"{where}.{key}: required, and missing")
            values[key] = default
        elif problem := check(raw[key]):
            problems.append(f"{where}.{key}: {problem}")
            values[key] = default
        else:
            values[key] = raw[key]
    return values
