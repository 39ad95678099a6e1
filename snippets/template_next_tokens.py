# What the instruct model expects next, with and without its chat template.
def visible(token: str) -> str:
    return "`" + token.replace(" ", "␣").replace("\n", "↵") + "`"


question = "What is the capital of France?"
inputs = {
    "the chat template (what it was tuned on)": instruct.format_prompt(question),
    "the bare question (template left out)": question,
}
top = {}
print("| the instruct model was given | its five most likely next tokens |")
print("| :-- | :-- |")
for label, text in inputs.items():
    top[label] = instruct.next_tokens(text, k=5)
    shown = ", ".join(f"{visible(t)} {p:.0%}" for t, p in top[label])
    print(f"| {label} | {shown} |")
note(template=top["the chat template (what it was tuned on)"], bare=top["the bare question (template left out)"])
