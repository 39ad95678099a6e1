# The reward margin and the preference accuracy at each step of the
# preferred model's training, from its training.json. The implicit reward of
# a reply is beta * (its log-probability under the model being trained minus
# under the frozen reference); the margin is the chosen reply's reward minus
# the rejected one's, averaged over the step's batch; the accuracy is the
# share of the batch's pairs whose chosen reply has the higher reward. Both
# are measured on the batch before the step updates the model.
import matplotlib.pyplot as plt

margins = preferred.training["reward_margins"]
accuracies = preferred.training["preference_accuracies"]
steps = range(1, len(margins) + 1)
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3))
left.plot(steps, margins, marker="o", markersize=3, color="#00695c")
left.axhline(0, color="#888888", linewidth=0.8)
left.set_xlabel("step (a batch of 8 pairs)")
left.set_ylabel("reward margin")
right.plot(steps, accuracies, marker="o", markersize=3, color="#6a1b9a")
right.set_ylim(-0.05, 1.05)
right.set_xlabel("step (a batch of 8 pairs)")
right.set_ylabel("preference accuracy")
for axis in (left, right):
    axis.grid(alpha=0.3)
fig.tight_layout()
half = len(margins) // 2
note(margins=margins, accuracies=accuracies, first_margin=margins[0], first_accuracy=accuracies[0],
     late_margin=sum(margins[half:]) / len(margins[half:]), late_accuracy=sum(accuracies[half:]) / len(accuracies[half:]),
     early_accuracy=sum(accuracies[:half]) / half)
