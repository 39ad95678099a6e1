# The base model given chat markup as raw text: the instruct model's ChatML
# (to Gemma's tokenizer these markers are ordinary text, cut into pieces) and
# Gemma's own turn markers (single special tokens in its vocabulary, which
# the base model was not tuned to use). Greedy, 32 new tokens, no template.
question = "What is the capital of Italy?"
prompts = {
    "ChatML, the instruct model's markup": (
        f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"),
    "Gemma's own turn markers": (
        f"<start_of_turn>user\n{question}<end_of_turn>\n<start_of_turn>model\n"),
}
written = {}
for name, prompt in prompts.items():
    result = base.generate(prompt, max_new_tokens=32, template="raw")
    print(f"=== {name} ({result.input_tokens} tokens with <bos>; "
          f"finish reason {result.finish_reason!r})")
    print(prompt, end="")
    print(">>> the base model wrote:")
    print(result.text)
    print()
    written[name] = result.text
note(chatml=written["ChatML, the instruct model's markup"], gemma=written["Gemma's own turn markers"])
