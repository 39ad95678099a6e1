# What did 40 steps of tuning change in what the model "knows"? Score true
# and false sentences with both models, as plain text (no template): the
# sum of the log-probabilities of their tokens, as on the Base models page.
import torch


def log_probability(model, text: str) -> float:
    ids = model.tokenizer(text)["input_ids"]  # begins with the <bos> token
    with torch.inference_mode():
        logits = model.model(input_ids=torch.tensor([ids])).logits[0, :-1]
    logp = torch.log_softmax(logits.float(), dim=-1)
    return sum(logp[i, ids[i + 1]].item() for i in range(len(ids) - 1))


pairs = [
    ("Paris is the capital of France.", "Paris is the capital of Germany."),
    ("The Eiffel Tower is in Paris.", "The Eiffel Tower is in Rome."),
    ("The Moon orbits the Earth.", "The Earth orbits the Moon."),
    ("Ice is frozen water.", "Ice is frozen milk."),
    ("A week has seven days.", "A week has nine days."),
]
scores = {"base": {}, "tuned": {}}
print("| sentence | base | tuned |")
print("| :-- | --: | --: |")
for pair in pairs:
    for sentence in pair:
        for role, model in (("base", base), ("tuned", tuned)):
            scores[role][sentence] = log_probability(model, sentence)
        print(f"| {sentence} | {scores['base'][sentence]:.1f} | {scores['tuned'][sentence]:.1f} |")
prefers_true = {role: [s[true] > s[false] for true, false in pairs] for role, s in scores.items()}
print()
for role in scores:
    print(f"- **{role}** scores the true sentence higher in "
          f"{sum(prefers_true[role])} of {len(pairs)} pairs")
margins = {role: [s[true] - s[false] for true, false in pairs] for role, s in scores.items()}
kept = [t >= b for b, t in zip(margins["base"], margins["tuned"])]  # margin not smaller
note(scores=scores, prefers_true=prefers_true, margins=margins, margin_kept=kept)
