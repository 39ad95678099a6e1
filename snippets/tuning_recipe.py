# The tuned model's own record of its training (training.json, written by
# the build that trained it): the recipe, the data, the losses, the time.
t = tuned.training
recipe = t["recipe"]
seen = recipe["steps"] * recipe["batch_size"]
rows = {
    "started from": f"the base model ({base.artifact.split(' (')[0]})",
    "training data": f"`{recipe['data']}`: {t['conversations']} conversations",
    "layout": f"the `{recipe['template']}` turn template, cut at {recipe['max_tokens']} tokens",
    "steps × batch": f"{recipe['steps']} × {recipe['batch_size']} = {seen} conversations seen",
    "learning rate": f"{recipe['learning_rate']:g} (AdamW)",
    "which weights": "all of them" if recipe["method"] == "full" else recipe["method"],
    "tokens that carry the loss": f"{t['trained_tokens']:,} (replies and their end-of-turn marker)",
    "loss, first and last step": f"{t['losses'][0]:.2f} → {t['losses'][-1]:.2f}",
    "computed with": f"torch {t['torch']}, transformers {t['transformers']}, on the CPU",
}
print("| | |")
print("| :-- | :-- |")
for label, value in rows.items():
    print(f"| {label} | {value} |")
# (training.json also records how long training took and the sha256 of the
# weights; both vary from one machine to the next, so they are left out of
# this output, which must not: the page shows the hash below it, from the
# output's lockfile entry)
note(conversations=t["conversations"], steps=recipe["steps"], seen=seen,
     losses=t["losses"], trained_tokens=t["trained_tokens"])
