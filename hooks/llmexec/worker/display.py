"""Worker side: rich outputs of a block (display(), a notebook cell's last value, matplotlib figures) as MIME bundles."""

from __future__ import annotations

import ast
import base64
import io
import json
import math
import sys
from typing import Any

from ..vocabulary import FIGURE

MAX_REPR = 20_000


def mime_bundle(value: Any) -> dict[str, str]:
    """The richest representations an object offers: PNG, HTML, and always plain text."""
    bundle: dict[str, str] = {"text/plain": repr(value)[:MAX_REPR]}
    if type(value).__name__ == "Figure" and hasattr(value, "savefig"):
        return {**bundle, **_figure(value)}
    for method, mime in (("_repr_png_", "image/png"), ("_repr_html_", "text/html")):
        if callable(getattr(value, method, None)):
            data = getattr(value, method)()
            if data:
                bundle[mime] = base64.b64encode(data).decode() if isinstance(data, bytes) else str(data)
    return bundle


def notes(values: dict[str, Any]) -> dict[str, Any]:
    """What note(name=value) records for checked claims: plain JSON values only, so a claim reads exactly what the
    lockfile stores (numpy and torch scalars become numbers)."""
    noted = {}
    for name, value in values.items():
        value = (
            value.item()
            if hasattr(value, "item") and callable(value.item) and not isinstance(value, (list, dict))
            else value
        )
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise TypeError(
                f"note({name}=...) takes numbers, strings, booleans and lists or dicts of them, "
                f"not {type(value).__name__}"
            ) from None
        noted[name] = value
    return noted


def _figure(figure: Any) -> dict[str, str]:
    """The PNG (shown; its bytes vary from one CPU to another, so they are provenance) and the data it was drawn
    from (compared within the tolerance): titles, labels, tick labels, lines, bars and scattered points per axes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")  # draws it: tick labels exist from here on
    suptitle = getattr(figure, "_suptitle", None)
    data = {"title": suptitle.get_text() if suptitle is not None else "", "axes": [_axes(a) for a in figure.get_axes()]}
    return {"image/png": base64.b64encode(buffer.getvalue()).decode(), FIGURE: json.dumps(data, sort_keys=True)}


def _axes(axes: Any) -> dict[str, Any]:
    return {
        "title": axes.get_title(),
        "xlabel": axes.get_xlabel(),
        "ylabel": axes.get_ylabel(),
        "xticks": [t.get_text() for t in axes.get_xticklabels()],
        "yticks": [t.get_text() for t in axes.get_yticklabels()],
        "lines": [{"label": line.get_label(), "xy": _plain(line.get_xydata())} for line in axes.get_lines()],
        "bars": [_plain([p.get_x(), p.get_y(), p.get_width(), p.get_height()]) for p in axes.patches],
        "points": [_plain(c.get_offsets()) for c in axes.collections if hasattr(c, "get_offsets")],
        "texts": [t.get_text() for t in axes.texts],
    }


def _plain(values: Any) -> Any:
    """Numbers as JSON: arrays become lists of floats, NaN and infinities their names."""
    values = values.tolist() if hasattr(values, "tolist") else values
    if isinstance(values, (list, tuple)):
        return [_plain(v) for v in values]
    return float(values) if isinstance(values, (int, float)) and math.isfinite(values) else str(values)


def open_figures() -> list[dict[str, str]]:
    """Figures left open by a block (plt.plot without plt.show), rendered and closed, as Jupyter's inline backend does."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return []
    bundles = [{**_figure(pyplot.figure(n)), "text/plain": f"<Figure {n}>"} for n in pyplot.get_fignums()]
    pyplot.close("all")
    return bundles


def run(
    code: str,
    filename: str,
    first_line: int,
    namespace: dict[str, Any],
    *,
    display_last: bool,
    shown: list[dict[str, str]],
) -> None:
    """exec the block; with display_last, a final expression's value is shown like a notebook's Out[]."""
    tree = ast.parse("\n" * (first_line - 1) + code, filename)
    last = tree.body.pop() if display_last and tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, filename, "exec"), namespace)
    if isinstance(last, ast.Expr):  # only an expression is popped
        value = eval(compile(ast.Expression(last.value), filename, "eval"), namespace)
        if value is not None:
            shown.append(mime_bundle(value))
    shown.extend(open_figures())
