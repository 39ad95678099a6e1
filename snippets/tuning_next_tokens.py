# The same input, token for token, to the base model and to the tuned
# model: a question in Gemma's turn format, with the model's turn opened.
# What are the likeliest first tokens of the reply, before and after tuning?
question = "Who painted The Starry Night?"
text = tuned.format_prompt(question)  # the chat template: <bos><start_of_turn>user ...
raw = text.removeprefix(tuned.tokenizer.bos_token)  # base adds <bos> itself
assert base.encode(raw, chat=False) == tuned.encode(text, chat=True)  # same ids

top = {"base": base.next_tokens(raw, k=5), "tuned": tuned.next_tokens(question, k=5, template="chat")}
print(f"input: {text!r}\n")
print("| rank | base: token | probability | tuned: token | probability |")
print("| --: | :-- | --: | :-- | --: |")
for rank, ((b, pb), (t, pt)) in enumerate(zip(top["base"], top["tuned"]), 1):
    print(f"| {rank} | `{b!r}` | {pb:.3f} | `{t!r}` | {pt:.3f} |")
note(**top)
