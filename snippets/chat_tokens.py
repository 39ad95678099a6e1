# The exact token sequence the instruct model receives for one question:
# the chat template applied, then split into tokens. Special tokens are in
# bold, ␣ is a space, ↵ a line break; the small number is the token's id.
question = "What is the capital of France?"
text = instruct.format_prompt(question)
tok = instruct.tokenizer
ids = tok(text, add_special_tokens=False)["input_ids"]
special = set(tok.all_special_ids)

pieces = []
for i in ids:
    piece = tok.decode([i])
    shown = "`" + piece.replace(" ", "␣").replace("\n", "↵") + "`"
    pieces.append((f"**{shown}**" if i in special else shown) + f"<sub>{i}</sub>")
    if piece.endswith("\n"):
        pieces.append("<br>")
print(f"{len(ids)} tokens, {sum(i in special for i in ids)} of them special:\n")
print(" ".join(pieces))
note(tokens=len(ids), special=[tok.decode([i]) for i in ids if i in special])
