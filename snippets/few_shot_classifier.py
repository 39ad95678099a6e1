# A base model as a classifier: two labelled examples, then compare the
# probabilities of the two label words as the next token. No generation,
# and no training.
import torch

template = (
    "Review: The food was cold and the waiter was rude.\n"
    "Sentiment: negative\n\n"
    "Review: Lovely staff, I will come back!\n"
    "Sentiment: positive\n\n"
    "Review: {}\n"
    "Sentiment:"
)
tok = base.tokenizer
label_ids = {label: tok(" " + label, add_special_tokens=False)["input_ids"][0]
             for label in ("positive", "negative")}

reviews = [
    "The film was a waste of two hours.",
    "Best pizza I have ever eaten.",
    "The battery died after a day.",
    "A warm, funny and moving story.",
]
labels = []
print("| review | P(positive) | P(negative) | the model's label |")
print("| :-- | --: | --: | :-- |")
for review in reviews:
    ids = torch.tensor([tok(template.format(review))["input_ids"]])
    with torch.inference_mode():
        logits = base.model(input_ids=ids).logits[0, -1]
    probs = torch.softmax(logits.float(), dim=-1)
    p = {label: float(probs[i]) for label, i in label_ids.items()}
    label = max(p, key=p.get)
    print(f"| {review} | {p['positive']:.0%} | {p['negative']:.0%} | {label} |")
    labels.append(label)
note(labels=labels)
