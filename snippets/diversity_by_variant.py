# How varied are the draws of each variant? The same open-ended prompts, k
# seeded draws per variant with the same settings (temperature 1.0, top-p 1.0:
# the model's own probabilities, nothing cut off): base given the raw text,
# tuned and instruct given it in their chat templates. Two measures per
# variant and prompt: distinct first lines (how many of the k draws begin
# with a different first line) and distinct-2 (distinct word pairs divided by
# all word pairs, pooled over the k draws).
prompts = ["Name a colour.", "Write a one-line slogan for a bakery."]
variants = {"base": (base, "raw"), "tuned": (tuned, "chat"), "instruct": (instruct, "chat")}
seeds = range(1, 9)  # k = 8 draws, seeds 1 to 8
TOKENS = 8  # short: each draw runs alone, and this block must stay cheap to rebuild


def first_line(text: str) -> str:
    """The first line with any characters on it, without surrounding spaces."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def bigrams(text: str) -> list[tuple[str, str]]:
    words = text.lower().split()
    return list(zip(words, words[1:]))


def cell(text: str, width: int = 34) -> str:
    text = repr(text)[1:-1]  # line breaks and tabs shown as \n, \t
    return text if len(text) <= width else text[: width - 1] + "…"


distinct_first, distinct_2, pairs = {}, {}, {}
for prompt in prompts:
    replies = {name: [model.generate(prompt, template=template, max_new_tokens=TOKENS, seed=seed,
                                     temperature=1.0, top_p=1.0).text for seed in seeds]
               for name, (model, template) in variants.items()}
    print(f"=== {prompt!r}: first lines of {len(seeds)} draws")
    print("seed | " + " | ".join(f"{name:<34}" for name in variants))
    for i, seed in enumerate(seeds):
        print(f"{seed:>4} | " + " | ".join(f"{cell(first_line(replies[n][i])):<34}" for n in variants))
    for name, texts in replies.items():
        grams = [g for text in texts for g in bigrams(text)]
        distinct_first.setdefault(name, []).append(len({first_line(t) for t in texts}))
        distinct_2.setdefault(name, []).append(round(len(set(grams)) / len(grams), 3) if grams else 0.0)
        pairs.setdefault(name, []).append(len(grams))
    print()

print(f"k = {len(seeds)} draws, temperature 1.0, top-p 1.0, at most {TOKENS} new tokens each")
print(f"{'prompt':<40} | {'variant':<8} | distinct first lines | distinct-2 (word pairs)")
for p, prompt in enumerate(prompts):
    for name in variants:
        print(f"{prompt:<40} | {name:<8} | {distinct_first[name][p]:>2} of {len(seeds):<15} | "
              f"{distinct_2[name][p]:.3f} of {pairs[name][p]}")
note(prompts=prompts, k=len(seeds), distinct_first=distinct_first, distinct_2=distinct_2, pairs=pairs)
