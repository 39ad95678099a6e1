# A few of the preference pairs, one of each kind: the prompt, the reply
# preferred and the reply rejected, as written in tuning/preferences.jsonl.
import json
from collections import Counter

pairs = [json.loads(line) for line in open("tuning/preferences.jsonl", encoding="utf-8") if line.strip()]
shown = {}
for pair in pairs:
    shown.setdefault(pair["kind"], pair)
print("| kind | prompt | chosen | rejected |")
print("| :-- | :-- | :-- | :-- |")
cell = lambda text: text.replace("|", "\\|").replace("\n", "<br>")
for kind, pair in shown.items():
    prompt = " / ".join(f"*{m['role']}:* {cell(m['content'])}" for m in pair["messages"])
    print(f"| {kind} | {prompt} | {cell(pair['chosen'])} | {cell(pair['rejected'])} |")
note(counts=dict(Counter(p["kind"] for p in pairs)), total=len(pairs))
