# Three training conversations, exactly as the model saw them during
# tuning: the turn template around them, cut into tokens. Highlighted
# tokens carry the loss (the model is trained to predict them); the rest
# is context only. The conversations are read from the training file.
import html

from llmexec.core.recipes import TEMPLATES, read_conversations
from llmexec.worker.tune import encode

recipe, data_path, _ = tuned.spec.tune_parts()  # the recipe and its data file
template = TEMPLATES[recipe.template]
conversations = read_conversations(data_path)
picks = {
    "a single question": next(c for c in conversations if len(c) == 2),
    "with a system message": next(c for c in conversations if c[0][0] == "system"),
    "several turns": next(c for c in conversations if len(c) >= 4 and c[0][0] == "user"),
}


def shown(token: str) -> str:
    return html.escape(token).replace("\n", "↵\n")


stats = {}
for title, turns in picks.items():
    ids, labels = encode(tuned.tokenizer, template, turns, recipe.max_tokens)
    pieces = [(tuned.tokenizer.decode([i]), label != -100) for i, label in zip(ids, labels)]
    body = "".join(f"<mark>{shown(p)}</mark>" if trained else shown(p) for p, trained in pieces)
    print(f"**{title}**: {len(ids)} tokens, {sum(t for _, t in pieces)} of them trained\n")
    print(f'<pre class="llmx-mask"><code>{body}</code></pre>\n')
    stats[title] = {
        "tokens": len(ids),
        "trained": "".join(p for p, t in pieces if t),
        "replies": [c for r, c in turns if r == "assistant"],
        "untrained": "".join(p for p, t in pieces if not t),
    }

# The whole file: what share of the tokens carries the loss
total = sum(len(encode(tuned.tokenizer, template, c, recipe.max_tokens)[0]) for c in conversations)
print(f"Over all {len(conversations)} conversations: {tuned.training['trained_tokens']:,} "
      f"of {total:,} tokens are trained ({tuned.training['trained_tokens'] / total:.0%}).")
note(picks=stats, total_tokens=total, end=template.end)
