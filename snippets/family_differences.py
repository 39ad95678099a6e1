# How the default models differ apart from instruction tuning: size,
# shape, vocabulary, and how each cuts the same sentence into tokens.
rows = {}
for role, model in (("base", base), ("tuned", tuned), ("instruct", instruct)):
    config = model.model.config
    config = getattr(config, "text_config", config)
    params = sum(p.numel() for p in model.model.parameters())
    rows[role] = {
        "architecture": type(model.model).__name__,
        "parameters": f"{params / 1e6:.0f} million",
        "layers": config.num_hidden_layers,
        "hidden size": config.hidden_size,
        "vocabulary (tokens)": f"{len(model.tokenizer):,}",
        "longest context (tokens)": f"{config.max_position_embeddings:,}",
    }

print("| | base | tuned | instruct |")
print("| :-- | :-- | :-- | :-- |")
for key in rows["base"]:
    print(f"| {key} | {rows['base'][key]} | {rows['tuned'][key]} | {rows['instruct'][key]} |")

sentence = "Unbelievably, the bioluminescent jellyfish outshone Reykjavík."
print(f"\nThe same sentence, *{sentence}*, cut into tokens by each model:\n")
counts = {}
for role, model in (("base", base), ("tuned", tuned), ("instruct", instruct)):
    ids = model.tokenizer(sentence, add_special_tokens=False)["input_ids"]
    pieces = [model.tokenizer.decode([i]).replace(" ", "␣") for i in ids]
    shown = " ".join(f"`{piece}`" for piece in pieces)
    print(f"- **{role}**, {len(ids)} tokens: {shown}")
    counts[role] = ids
note(tokens={role: len(ids) for role, ids in counts.items()},
     same_tokens_base_tuned=counts["base"] == counts["tuned"],
     same_rows_base_tuned=rows["base"] == rows["tuned"])
