# Generation is next-token prediction in a loop: take the most likely token,
# append it to the text, and ask again. Each row is one turn of the loop.
def visible(text: str) -> str:
    return "`" + text.replace(" ", "␣").replace("\n", "↵") + "`"


text = "The capital of France is"
print("| step | the text so far ends with | most likely next token | probability |")
print("| --: | --: | :-- | --: |")
for step in range(1, 9):
    token, p = base.next_tokens(text, k=1)[0]
    end = visible("…" + text[-24:])
    print(f"| {step} | {end} | {visible(token)} | {p:.1%} |")
    text += token
print(f"\nAfter eight steps the text reads: {visible(text)}")
note(text=text)
