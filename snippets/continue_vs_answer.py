# The same request, given to each model the way it was trained to read text:
# the base model gets raw text, the instruct model its chat template.
request = "Name three planets."

answers = {}
for model in (base, instruct):
    result = model.generate(request, max_new_tokens=40)
    print(f"--- {result.model}: {result.new_tokens} new tokens, "
          f"finish reason {result.finish_reason!r}")
    print(result.text.strip())
    print()
    answers[result.model] = {"text": result.text, "finish_reason": result.finish_reason}
note(**answers)
