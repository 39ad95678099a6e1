# Pre-training taught the base model to give every text a probability.
# Sum the log-probabilities of each token given the ones before it: the
# closer to zero, the more the text looks like what the model learned from.
import torch


def log_probability(model, text: str) -> tuple[float, int]:
    ids = model.tokenizer(text)["input_ids"]  # begins with the <bos> token
    with torch.inference_mode():
        logits = model.model(input_ids=torch.tensor([ids])).logits[0, :-1]
    logp = torch.log_softmax(logits.float(), dim=-1)
    total = sum(logp[i, ids[i + 1]].item() for i in range(len(ids) - 1))
    return total, len(ids) - 1


sentences = [
    "The cat sat on the mat.",
    "The mat sat on the cat.",
    "Mat the on sat cat the.",
    "Paris is the capital of France.",
    "Paris is the capital of Germany.",
]
scores, counts = {}, {}
print("| sentence | tokens | log-probability |")
print("| :-- | --: | --: |")
for sentence in sentences:
    total, count = log_probability(base, sentence)
    print(f"| {sentence} | {count} | {total:.1f} |")
    scores[sentence], counts[sentence] = total, count
note(scores=scores, counts=counts)
