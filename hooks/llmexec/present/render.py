"""HTML for outputs, side-by-side generations and failures; every piece of untrusted text is escaped here."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from ..core.models import ModelSpec
from ..core.modes import Policy
from ..core.protocol import CodeOutcome, GenerateOutcome
from ..core.request import Request
from ..core.settings import PREVIEW_EXECUTE_ENV
from ..vocabulary import LOCK_COMMAND

_FINISH = {
    "eos": "stopped: the model emitted its end-of-sequence token",
    "length": "stopped: reached max_new_tokens ({limit})",
    "stop": "stopped: at a stop sequence (cut there)",
}


def _pre(text: str, css: str) -> str:
    return f'<pre class="{css}"><code>{escape(text)}</code></pre>'


def code_output(outcome: CodeOutcome, models: dict[str, ModelSpec], weights: dict[str, str] | None = None) -> str:
    """What a code block printed, captioned with the model artifacts it used; a tuned model with the sha256 of the
    weights that produced this output (from its lockfile entry: weights trained on another CPU differ in bytes)."""
    used = [models[role] for role in outcome.models_used if role in models]
    caption = "Output"
    if used:
        caption += " · ran with " + ran_with(used, weights or {})
    body = _pre(outcome.output, "llmx-text") if outcome.output else ""
    body += "".join(rich(bundle) for bundle in outcome.rich)
    body = body or '<p class="llmx-empty">(printed nothing)</p>'
    return f'<div class="llmx-result"><div class="llmx-caption">{escape(caption)}</div>{body}</div>'


def ran_with(used: list[ModelSpec], weights: dict[str, str]) -> str:
    return "; ".join(
        f"{m.role} = {m.artifact}" + (f", weights sha256 {weights[m.role][:16]}…" if weights.get(m.role) else "")
        for m in used
    )


def provenance(used: list[ModelSpec], weights: dict[str, str]) -> str:
    """Under an output=markdown block that used a tuned model: which weights produced it (not part of the output,
    whose bytes must not depend on the CPU that trained them)."""
    return f'<p class="llmx-caption llmx-provenance">{escape("Ran with " + ran_with(used, weights))}</p>'


def rich(bundle: dict[str, str], *, trusted: bool = False) -> str:
    """One displayed value: a PNG as an inline image; HTML only when trusted, else shown as its source text."""
    if "image/png" in bundle:
        png = "".join(c for c in bundle["image/png"] if c.isalnum() or c in "+/=")  # base64 only, nothing else
        return f'<img class="llmx-figure" alt="{escape(bundle.get("text/plain", "figure"))}" src="data:image/png;base64,{png}">'
    if trusted and "text/html" in bundle:
        return trusted_html(bundle["text/html"])
    return _pre(bundle.get("text/html") or bundle.get("text/plain", ""), "llmx-text")


def trusted_html(output: str) -> str:
    """Only for blocks that opted in with output=html: the page's author vouches for this snippet."""
    return f'<div class="llmx-html">{output}</div>'


def failure(title: str, detail: str, output: str = "") -> str:
    """A visible error box: under `mkdocs serve` this is how an author sees what went wrong."""
    printed = _pre(output, "llmx-text") if output else ""
    return (
        f'<div class="llmx-result llmx-failed" role="alert"><div class="llmx-caption">{escape(title)}</div>'
        f"{printed}{_pre(detail, 'llmx-error')}</div>"
    )


def why_not_executed(where: str, policy: Policy, declined: str = "") -> str:
    """Why a block has no output in this build, with its location. An `unexecuted` outcome carries no text when the
    mode is why (a preview executes nothing, locked mode never executes); when the runner declined the block (a tuned
    model a preview may not train), its `error` is the runner's reason, given here as `declined`."""
    if declined:
        return declined
    if policy.marks_only:
        return (
            f"The inputs of this block ({where}) changed, and this preview executes nothing ({PREVIEW_EXECUTE_ENV}=1 "
            "would run it here). Its output appears once the lockfile is updated."
        )
    return f"{where}: no lockfile entry matches this block, and {policy.mode} mode never executes; {LOCK_COMMAND}"


def unexecuted(reason: str) -> str:
    """The marker a preview build puts where it did not execute a block: the reason, and its fix on a line below."""
    message, _, fix = reason.partition("\n  --> ")
    message = message[:1].upper() + message[1:]
    return (
        f'<div class="llmx-result llmx-unexecuted" role="note"><div class="llmx-caption">Not executed in this preview'
        f"</div><p>{escape(message)}</p>" + (f"<p>&rarr; {escape(fix)}</p>" if fix else "") + "</div>"
    )


PREVIEW_ONLY = (
    "Executed for this preview only: this output is not in the lockfile yet, and the published site "
    "will show it once a maintainer records it (make lock)."
)


def preview_only() -> str:
    """The marker on an output that a preview build executed: real, but not yet reviewed into the lockfile."""
    return f'<div class="llmx-preview-only" role="note">{escape(PREVIEW_ONLY)}</div>'


def pending(prompt: str, note: str) -> str:
    """Under `mkdocs serve`, while the answer is generated in the background: the prompt as written, and a note."""
    return (
        f'<div class="llmx-label">Prompt (the exact input the model receives is shown with its answer)</div>'
        f'{_pre(prompt, "llmx-input")}<div class="llmx-result llmx-pending" role="status">'
        f'<div class="llmx-caption">Pending</div><p>{escape(note)}</p></div>'
    )


def skipped(reason: str) -> str:
    return f'<div class="llmx-result llmx-skipped"><div class="llmx-caption">Not run</div><p>{escape(reason)}</p></div>'


@dataclass(frozen=True)
class Column:
    """One model's answer in a generate block; `name` is set for a variant column such as base:tuned-format."""

    spec: ModelSpec
    outcome: GenerateOutcome
    limit: int
    preview: bool
    name: str = ""


def generation(columns: list[Column], where: str, policy: Policy) -> str:
    """One column per model: its artifact, the exact input it received, what it generated and why it stopped (or why
    it was not executed: the block's location and the mode); a column executed by a preview build says so. A variant column (base:tuned-format) is named as written, and says
    that the input shown is the other model's turn format given to this model as raw text."""
    parts = [f'<div class="llmx-generate llmx-cols-{len(columns)}">']
    for column in columns:
        spec, outcome, limit, preview = column.spec, column.outcome, column.limit, column.preview
        parts.append(f'<section class="llmx-model llmx-{escape(spec.role)}">')
        parts.append(
            f'<header><span class="llmx-role">{escape(column.name or spec.role)}</span> '
            f'<span class="llmx-artifact">{escape(spec.artifact)}</span></header>'
        )
        if column.name:
            parts.append(f'<p class="llmx-variant">{escape(_variant_note(column.name, spec.role))}</p>')
        if preview:
            parts.append(preview_only())
        if outcome.status == "unexecuted":
            parts.append(unexecuted(why_not_executed(where, policy, outcome.error)))
        elif outcome.status == "pending":
            parts.append(pending(outcome.input_text, outcome.error))
        elif outcome.status == "ok":
            parts.append(f'<div class="llmx-label">Input the model received ({outcome.input_tokens} tokens)</div>')
            parts.append(_pre(outcome.input_text, "llmx-input"))
            parts.append('<div class="llmx-label">Generated</div>')
            parts.append(_pre(outcome.text, "llmx-output"))
            if not outcome.text.strip():
                parts.append('<p class="llmx-empty">(empty: the model generated no visible text)</p>')
            stop = _FINISH.get(outcome.finish_reason, outcome.finish_reason).format(limit=limit)
            count = f"{outcome.new_tokens} new token{'s' if outcome.new_tokens != 1 else ''}"
            parts.append(
                f"<footer>{escape(stop)} · {count} · {escape(outcome.decoding or Request().describe())}</footer>"
            )
        else:
            parts.append(_pre(outcome.error, "llmx-error"))
        parts.append("</section>")
    parts.append("</div>")
    return "".join(parts)


def _variant_note(name: str, role: str) -> str:
    layout = name.partition(":")[2]
    if layout == "raw":
        return f"The {role} model, given the conversation as raw text joined by blank lines."
    return (
        f"The {role} model's weights, given exactly the text that the {layout.removesuffix('-format')} model's "
        "chat template makes (shown below), as raw text; it stops at the end-of-turn marker."
    )


_MARKS = {
    "true": ("✓", "llmx-claim-true", "Checked against the recorded output when this site was built: "),
    "false": ("✗", "llmx-claim-false", "FAILED when this site was built: "),
    "error": ("✗", "llmx-claim-false", "This check could not be evaluated: "),
    "unchecked": ("?", "llmx-claim-unchecked", "Not checked in this build: "),
}


def claim(sentence: str, expression: str, state: str, detail: str, anchor: str) -> str:
    """A checked sentence, inline: the sentence's own Markdown, then a small mark linking to the evidence that
    reveals the check on hover or keyboard focus (CSS only: works with JavaScript off)."""
    mark, css, lead = _MARKS[state]
    shown = lead + expression + (f"\n{detail}" if detail and state != "true" else "")
    target = f' href="#{escape(anchor)}"' if anchor else ' href="#" role="note"'
    attribute = escape(shown).replace("\n", "&#10;")  # one line: the page keeps its line numbers
    return (
        f'<span class="llmx-claim {css}">{sentence}<a class="llmx-check"{target} '
        f'aria-label="{attribute}" data-check="{attribute}">{mark}</a></span>'
    )


def anchor(name: str) -> str:
    """Where a claim's mark links to: the output of the block with that id."""
    return f"llmx-{name}"
