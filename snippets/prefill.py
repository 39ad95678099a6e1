# Prefill: write the chat prompt yourself and append the first characters of
# the reply. The model can only go on from there, so the opening decides the
# shape of the answer. Greedy, with the instruct model's own template.
tok = instruct.tokenizer
replies = []  # noted for the checked sentences: [{"prefill", "reply", "ended"}, ...]


def reply(request: str, prefill: str = "") -> None:
    prompt = tok.apply_chat_template([{"role": "user", "content": request}],
                                     tokenize=False, add_generation_prompt=True)
    result = instruct.generate(prompt + prefill, max_new_tokens=40, template="raw")
    how = "ended its turn" if result.finish_reason == "eos" else "cut off"
    label = f"prefilled with {prefill!r}" if prefill else "no prefill"
    print(f"--- {label} ({how}):")
    print(prefill + result.text)
    print()
    replies.append({"prefill": prefill, "reply": prefill + result.text,
                    "ended": result.finish_reason == "eos"})


reply("Answer with one word: what colour is grass?")
reply("Answer with one word: what colour is grass?", prefill='"')
reply("Reply in JSON with keys name and age for a 30 year old named Ana.")
reply("Reply in JSON with keys name and age for a 30 year old named Ana.",
      prefill='{"name": "Ana", "age":')
reply("Reply in JSON with keys name and age for a 30 year old named Ana.",
      prefill='{\n  "name": "Ana",\n  "age": 30')
note(replies=replies)
