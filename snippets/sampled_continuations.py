# Exploring what a base model can write: sample instead of taking the top
# token. A fixed seed per draw keeps the page the same on every rebuild.
import torch

prompt = "The rain had not stopped for three days when the letter arrived."
inputs = base.tokenizer(prompt, return_tensors="pt")
start = inputs["input_ids"].shape[1]
draws = []
for seed in (1, 2, 3):
    torch.manual_seed(seed)
    with torch.inference_mode():
        out = base.model.generate(**inputs, do_sample=True, temperature=0.8,
                                  top_p=0.95, max_new_tokens=32)
    new = base.tokenizer.decode(out[0, start:], skip_special_tokens=True)
    print(f"--- draw with seed {seed}")
    print(prompt + new)
    print()
    draws.append(new)
note(draws=draws)
