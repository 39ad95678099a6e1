"""Checked claims, evaluated over a page's recorded outcomes (never the models), and the message when one fails."""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from ..plan.claims import Claim
from ..vocabulary import CLAIM_HELPERS
from .evidence import Unavailable

ClaimState = Literal["true", "false", "error", "unchecked"]


@dataclass(frozen=True)
class Verdict:
    """A checked claim's state (true, false, error, unchecked), with the values it read or what is wrong with it."""

    state: ClaimState
    detail: str = ""  # false: the values the expression read; error: what is wrong with the claim
    values: tuple[str, ...] = field(default=())


def _matches(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None


def _words(text: str) -> list[str]:
    return re.findall(r"[\w'’-]+", text)


def about(value: float, stated: float | int | str) -> bool:
    """A number as a sentence states it: within one unit of the stated number's last digit, so about(x, 7.77)
    holds for 7.76 <= x <= 7.78 and about(x, "4.50") for 4.49 <= x <= 4.51 (a string keeps trailing zeros)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"about() compares a number, not {type(value).__name__}")
    digits = Decimal(stated if isinstance(stated, str) else repr(stated))  # repr: the shortest form, as written
    unit = Decimal(1).scaleb(digits.as_tuple().exponent)  # type: ignore[arg-type]  # an int for a finite number
    return abs(Decimal(repr(float(value))) - digits) <= unit


HELPERS: dict[str, Any] = {
    "len": len,
    "any": any,
    "all": all,
    "min": min,
    "max": max,
    "abs": abs,
    "round": round,
    "sum": sum,
    "sorted": sorted,
    "set": set,
    "list": list,
    "str": str,
    "int": int,
    "float": float,
    "matches": _matches,
    "words": _words,
    "about": about,
    "True": True,
    "False": False,
    "None": None,
}
assert set(HELPERS) == set(CLAIM_HELPERS), "vocabulary.CLAIM_HELPERS names exactly these"

_NODES = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Mod,
    ast.FloorDiv,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.Is,
    ast.IsNot,
    ast.Call,
    ast.keyword,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.Name,
    ast.Load,
    ast.Store,
    ast.Constant,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.Dict,
    ast.IfExp,
    ast.GeneratorExp,
    ast.ListComp,
    ast.comprehension,
)


def check_syntax(expression: str) -> str:
    """'' when the expression is a plain, side-effect-free Python expression; else what is wrong with it."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        return f"the check is not a Python expression ({exc.msg})"
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            return f"the check uses {type(node).__name__}, which claims do not allow (only expressions over outcomes)"
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            return f"the check reads the private attribute {node.attr!r}"
    return ""


def evaluate(claim: Claim, results: dict[str, Any]) -> Verdict:
    """Evaluate over the page's named results. A result that is not available (a preview that did not execute
    its block, a failed block) leaves the claim unchecked, which the caller reports in its own way."""
    if problem := check_syntax(claim.expression):
        return Verdict("error", problem)
    missing = [name for name in claim.names() if name not in results]
    if missing:
        known = ", ".join(sorted(results)) or "none"
        if hasattr(builtins, missing[0]):  # e.g. zip: a function, not a block id
            return Verdict(
                "error",
                f"{missing[0]}() is not one of the functions a check may call (those are: "
                f"{', '.join(h for h in HELPERS if h[0].islower())})",
            )
        return Verdict("error", f"no block on this page has id={missing[0]} (the ids here: {known})")
    pending = [name for name in claim.names() if getattr(results[name], "unavailable", "")]
    if pending:
        return Verdict("unchecked", results[pending[0]].unavailable)
    scope = {**HELPERS, **{name: results[name] for name in claim.names()}}
    try:
        value = eval(
            compile(ast.parse(claim.expression, mode="eval"), claim.where, "eval"), {"__builtins__": {}, **scope}
        )
    except Unavailable as exc:  # it read a model's answer this build does not have (the others' were there)
        return Verdict("unchecked", str(exc))
    except Exception as exc:  # a claim that cannot be evaluated is reported, never raised
        return Verdict("error", f"evaluating the check raised {type(exc).__name__}: {exc}")
    values = tuple(_values(claim.expression, scope))
    if value is True or (value is not False and bool(value)):
        return Verdict("true", values=values)
    return Verdict("false", "; ".join(values), values)


def _values(expression: str, scope: dict[str, Any]) -> list[str]:
    """`source = value` for each outermost read of a result in the expression: what a failing claim saw."""
    tree = ast.parse(expression, mode="eval")
    shown: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)) and any(
            isinstance(n, ast.Name) and n.id in scope and n.id not in HELPERS for n in ast.walk(node)
        ):
            source = ast.get_source_segment(expression, node) or ""
            try:
                value = eval(compile(ast.Expression(node), "<claim>", "eval"), {"__builtins__": {}, **scope})
            except Exception:  # inside a comprehension, say: nothing to show
                return
            text = repr(value)
            shown.append(f"{source} = {text[:240] + '…' if len(text) > 240 else text}")
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree.body)
    return list(dict.fromkeys(shown))


def message(claim: Claim, verdict: Verdict, wheres: dict[str, str]) -> str:
    """The build error for a false claim or a check that cannot run: where, the sentence, the block, the output."""
    about = (
        ", ".join(f"the block id={name} at {wheres[name]}" for name in claim.names() if name in wheres) or "no block"
    )
    sentence = " ".join(claim.sentence.split())
    if verdict.state == "false":
        seen = "\n".join(f"      {value}" for value in verdict.values) or "      (no value to show)"
        return (
            f'{claim.where}: this sentence is not true of the output it describes: "{sentence}"\n'
            f"    check: {claim.expression}\n    about: {about}\n    the output says:\n{seen}\n"
            "  --> rewrite the sentence so that it holds for this output (or so that it does not depend on one "
            "particular output), or correct the check; a changed prompt or model is the usual cause"
        )
    return (
        f'{claim.where}: cannot check the sentence "{sentence}": {verdict.detail}\n'
        f"    check: {claim.expression}\n"
        "  --> write the check as a Python expression over the ids of this page's blocks, e.g. "
        "{check: capital.instruct.finish_reason == \"eos\"} (README, 'Checked claims')"
    )
