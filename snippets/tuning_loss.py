# The training loss at each of the tuned model's steps, from its
# training.json: the average negative log-probability that the model gave
# the reply tokens of that step's batch, before the step updated it.
import matplotlib.pyplot as plt

losses = tuned.training["losses"]
steps = range(1, len(losses) + 1)
fig, axis = plt.subplots(figsize=(8, 3))
axis.plot(steps, losses, marker="o", markersize=3, color="#6a1b9a")
axis.set_xlabel("step (a batch of 8 conversations)")
axis.set_ylabel("loss on the replies")
axis.set_ylim(bottom=0)
axis.grid(alpha=0.3)
fig.tight_layout()
note(first=losses[0], last=losses[-1], lowest=min(losses),
     ups=sum(b > a for a, b in zip(losses, losses[1:])))  # steps where it rose
