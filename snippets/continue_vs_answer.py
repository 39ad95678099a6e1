# The same request, given to each model the way it was trained to read text:
# the base model gets raw text, the instruct model its chat template.
request = "Write a short list of three fruits."

raw = base.generate(request, max_new_tokens=32)
chat = instruct.generate(request, max_new_tokens=32)

for result in (raw, chat):
    print(f"--- {result.model} ({result.finish_reason}, {result.new_tokens} new tokens)")
    print(result.text)
