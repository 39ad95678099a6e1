# Why the base model's outputs loop: greedy decoding always takes the top
# token, and once a line has been repeated, repeating it again is the top
# choice. Sampling draws each token at random (temperature 0.8, top-p 0.95),
# with a fixed seed per draw so that the page is the same on every rebuild.
import torch

prompt = "List three fruits."
inputs = base.tokenizer(prompt, return_tensors="pt")
start = inputs["input_ids"].shape[1]


def run(**settings) -> str:
    with torch.inference_mode():
        out = base.model.generate(**inputs, max_new_tokens=40, **settings)
    return base.tokenizer.decode(out[0, start:], skip_special_tokens=True)


draws = {"greedy": run(do_sample=False)}
for seed in (1, 2, 3):
    torch.manual_seed(seed)
    draws[f"sampled, seed {seed}"] = run(do_sample=True, temperature=0.8, top_p=0.95)

copied = {}
for name, text in draws.items():
    copies = sum(line.strip() == prompt for line in text.split("\n"))
    copied[name] = copies
    print(f"--- {name}: the prompt line copied {copies} times")
    print(text.strip())
    print()
note(copies=copied)  # {"greedy": n, "sampled, seed 1": n, ...}
