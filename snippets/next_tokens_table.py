# For each prompt: the base model's five most likely next tokens,
# as a small Markdown table with a text bar for each probability.
def shown(token: str) -> str:
    """A token as inline code, with spaces and line breaks made visible."""
    return "`" + token.replace(" ", "␣").replace("\n", "↵") + "`"


def bar(p: float, width: int = 20) -> str:
    return "█" * round(p * width) or "▏"


prompts = [
    "The capital of France is",
    "The opposite of hot is",
    "Once upon a time, there was a",
    "def fibonacci(n):\n    ",
]

top = {}
print('<div class="grid" markdown>')
for prompt in prompts:
    print(f'<div markdown>\n\nAfter {shown(prompt)}\n')
    print("| next token | probability | |")
    print("| :-- | --: | :-- |")
    top[prompt] = base.next_tokens(prompt, k=5)
    for token, p in top[prompt]:
        print(f"| {shown(token)} | {p:.1%} | {bar(p)} |")
    print("\n</div>")
print("</div>")
note(top=top)  # for the checked sentences: {prompt: [[token, probability], ...]}
