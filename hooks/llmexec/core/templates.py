"""Turn templates: how a conversation is laid out as a model's prompt text, computed without loading any model."""

from __future__ import annotations

from dataclasses import dataclass

Turn = tuple[str, str]  # (role, content)


@dataclass(frozen=True)
class TurnTemplate:
    """How a conversation is laid out for the model; the tuned tokenizer gets `jinja` as its chat template."""

    user: str
    model: str
    end: str  # closes every turn; the model learns to emit it, and generation stops on it
    after_end: str
    bos: bool
    system: str = ""  # a system turn's opening; "" means the system text is put before the first user message
    jinja: str = ""


_GEMMA_JINJA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set prefix = messages[0]['content'] + '\\n\\n' %}"
    "{% set turns = messages[1:] %}{% else %}{% set prefix = '' %}{% set turns = messages %}{% endif %}"
    "{% for m in turns %}{{ '<start_of_turn>' + ('model' if m['role'] == 'assistant' else m['role']) + '\\n' }}"
    "{{ (prefix if loop.first else '') + m['content'] + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)
_CHATML_JINJA = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

TEMPLATES: dict[str, TurnTemplate] = {  # by name: vocabulary.TURN_FORMATS, what the settings offer
    "gemma": TurnTemplate(
        "<start_of_turn>user\n", "<start_of_turn>model\n", "<end_of_turn>", "\n", True, "", _GEMMA_JINJA
    ),
    "chatml": TurnTemplate(
        "<|im_start|>user\n",
        "<|im_start|>assistant\n",
        "<|im_end|>",
        "\n",
        False,
        "<|im_start|>system\n",
        _CHATML_JINJA,
    ),
}


def render(template: TurnTemplate, turns: list[Turn]) -> tuple[str, list[tuple[int, int]]]:
    """The conversation as the model sees it (the same text as the tuned tokenizer's chat template), and the
    character spans that are trained: each assistant reply with the end-of-turn marker that closes it."""
    text, trained, prefix = "", [], ""
    if turns[0][0] == "system":
        if template.system:
            text += template.system + turns[0][1] + template.end + template.after_end
        else:
            prefix = turns[0][1] + "\n\n"
        turns = turns[1:]
    for index, (role, content) in enumerate(turns):
        if role == "user":
            text += template.user + (prefix if index == 0 else "") + content + template.end + template.after_end
        else:
            text += template.model
            trained.append((len(text), len(text) + len(content) + len(template.end)))
            text += content + template.end + template.after_end
    return text, trained


def prompt_text(template: TurnTemplate, turns: list[Turn]) -> str:
    """A conversation that ends with the user's turn, laid out in the template's turn format with the opening of
    the model's turn: the tuned tokenizer's chat template output without its BOS (a raw prompt gets the BOS from the
    tokenizer), computed without loading any model."""
    return render(template, turns)[0] + template.model
