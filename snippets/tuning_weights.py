# How far did tuning move the weights? Compare each weight tensor of the
# tuned model with the same tensor of the base model it started from:
# the size of the change, relative to the size of the tensor.
import statistics

import torch

before = dict(base.model.named_parameters())
changes = {}
with torch.inference_mode():
    for name, after in tuned.model.named_parameters():
        changes[name] = ((after - before[name]).norm() / before[name].norm()).item()
same_shape = all(p.shape == before[n].shape for n, p in tuned.model.named_parameters())
same_vocabulary = base.tokenizer.get_vocab() == tuned.tokenizer.get_vocab()
count = sum(p.numel() for p in tuned.model.parameters())
median = statistics.median(changes.values())
print(f"weight tensors: {len(changes)}, parameters: {count / 1e6:.0f} million, same shapes: {same_shape}")
print(f"same vocabulary: {same_vocabulary}")
print(f"change of the median tensor: {median:.2%}")
print("the tensors that moved most:")
for name in sorted(changes, key=changes.get, reverse=True)[:3]:
    print(f"    {name}: {changes[name]:.2%}")
note(same_shape=same_shape, same_vocabulary=same_vocabulary, median=median,
     largest=max(changes.values()))
