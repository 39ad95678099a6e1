# The preferred model's own record of its training (training.json, written
# by the build that trained it): the recipe, the pairs, the per-step numbers.
t = preferred.training
recipe = t["recipe"]
seen = recipe["steps"] * recipe["batch_size"]
rows = {
    "started from": "the tuned model, whose frozen copy is also the reference",
    "training data": f"`{recipe['data']}`: {t['pairs']} pairs, "
                     + ", ".join(f"{n} {kind}" for kind, n in t["kinds"].items()),
    "β (beta)": f"{recipe['beta']:g}",
    "steps × batch": f"{recipe['steps']} × {recipe['batch_size']} = {seen} pairs seen",
    "learning rate": f"{recipe['learning_rate']:g} (AdamW)",
    "which weights": "all of them" if recipe["method"] == "full" else recipe["method"],
    "reference log-probabilities": f"computed once, before the first step, for {t['reference_sequences']} replies",
    "loss, first and last step": f"{t['losses'][0]:.3f} → {t['losses'][-1]:.3f}",
    "computed with": f"torch {t['torch']}, transformers {t['transformers']}, on the CPU",
}
print("| | |")
print("| :-- | :-- |")
for label, value in rows.items():
    print(f"| {label} | {value} |")
# (the time taken and the sha256 of the weights vary from one machine to
# the next: the page shows the hash below this output, from its entry)
note(pairs=t["pairs"], kinds=t["kinds"], steps=recipe["steps"], seen=seen, beta=recipe["beta"],
     reference=t["reference_sequences"], losses=t["losses"])
