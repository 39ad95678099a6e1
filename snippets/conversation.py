# A conversation with history: earlier turns go back into the chat template,
# and the model answers the last message in their light.
import torch

messages = [
    {"role": "user", "content": "Recommend a book about space."},
    {"role": "assistant", "content": "Try 'Cosmos' by Carl Sagan."},
    {"role": "user", "content": "Who wrote it?"},
]
tok = instruct.tokenizer
prompt = tok.apply_chat_template(messages, tokenize=False,
                                 add_generation_prompt=True)
inputs = tok(prompt, add_special_tokens=False, return_tensors="pt")
with torch.inference_mode():
    out = instruct.model.generate(**inputs, do_sample=False, max_new_tokens=32)
new = out[0, inputs["input_ids"].shape[1]:]
ended = new[-1].item() == tok.eos_token_id

print("=== the input, history included")
print(prompt)
print("=== the reply (" + ("it ended its turn" if ended else "cut off") + ")")
reply = tok.decode(new, skip_special_tokens=True)
print(reply)
note(reply=reply, ended=ended)
