# Two models in one small system: the base model drafts (three sampled
# continuations of a story opening, one seed each), and the instruct model,
# given each draft as a request, condenses it into one sentence.
import torch

opening = "The rain had not stopped for three days when the letter arrived."
inputs = base.tokenizer(opening, return_tensors="pt")
start = inputs["input_ids"].shape[1]

summaries, ended = [], []
for seed in (1, 2, 3):
    torch.manual_seed(seed)
    with torch.inference_mode():
        out = base.model.generate(**inputs, do_sample=True, temperature=0.8,
                                  top_p=0.95, max_new_tokens=40)
    draft = opening + base.tokenizer.decode(out[0, start:], skip_special_tokens=True)
    summary = instruct.chat("Summarise this text in one sentence:\n\n" + draft,
                            max_new_tokens=40)
    how = "ended its turn" if summary.finish_reason == "eos" else "cut off"
    print(f"=== draft {seed} (base model, seed {seed})")
    print(draft.strip())
    print(f">>> one sentence (instruct model, {how}):")
    print(summary.text.strip())
    print()
    summaries.append(summary.text.strip())
    ended.append(summary.finish_reason == "eos")
note(summaries=summaries, ended=ended)
