"""Generation features pages ask for: seeded sampling, stop sequences, prefill, multi-turn chat, the generation prompt."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from llmexec.plan.blocks import find_blocks

SNIPPETS = """
# API

```python exec
full = instruct.generate("the cat sat", max_new_tokens=12, template="raw")
word = full.text.split()[3]
cut = instruct.generate("the cat sat", max_new_tokens=12, template="raw", stop=[word, "no such words"])
assert cut.finish_reason == "stop" and cut.text == full.text[:full.text.index(word)], (full, cut)
assert cut.new_tokens < full.new_tokens
print("stop ok")
```

```python exec
conversation = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "good morning"},
                {"role": "user", "content": "translate to french"}]
text = instruct.format_prompt(conversation)  # the tiny test tokenizer knows words, so compare the template's text
assert text.count("<|im_start|>user") == 2 and "<|im_start|>assistant\\ngood morning<|im_end|>" in text
assert text.endswith("<|im_start|>assistant\\n")
g = instruct.chat(conversation, max_new_tokens=4)
assert g.input_tokens == len(instruct.tokenizer(text, add_special_tokens=False)["input_ids"])
assert instruct.format_prompt("hello", prefill="bonjour").endswith("<|im_start|>assistant\\nbonjour")
pre = instruct.chat("hello", prefill="bonjour", max_new_tokens=4)
assert pre.input_text.rstrip().endswith("bonjour"), pre.input_text
closed = instruct.format_prompt("hello", generation_prompt=False)
assert closed.endswith("<|im_end|>\\n") and "assistant" not in closed
chat_probs = instruct.next_tokens("hello", k=3, template="chat")
assert chat_probs == instruct.next_tokens(instruct.format_prompt("hello"), k=3)  # the same input, laid out twice
assert chat_probs != instruct.next_tokens("hello", k=3)
a = base.generate("the cat", max_new_tokens=8, template="raw", seed=5, temperature=0.9)
b = base.generate("the cat", max_new_tokens=8, template="raw", seed=5, temperature=0.9)
c = base.generate("the cat", max_new_tokens=8, template="raw", seed=6, temperature=0.9)
assert a.text == b.text and a.decoding == "sampled with seed 5 (temperature 0.9, top-p 1), fp32"
print("api ok", a.text != c.text)
```
"""

FENCES = """
# Fences

```generate model=base template=raw seed=3 temperature=1.5 max_new_tokens=10 id=draw
the cat sat
```

```generate model=base template=raw seed=4 temperature=1.5 max_new_tokens=10
the cat sat
```

```generate model=instruct prefill="good morning" max_new_tokens=6 id=pre
hello
```

```generate model=base template=raw max_new_tokens=6
the cat sat
```
"""


def test_the_snippet_api_chat_prefill_stop_and_seeds(site):
    site.write("docs/index.md", SNIPPETS)
    site.build()
    html = site.html()
    assert "stop ok" in html and "api ok" in html


def test_seeded_fences_are_reproducible_from_nothing_and_run_alone(site, caplog):
    site.write("docs/index.md", FENCES)
    site.build()
    first = site.html()
    entries = [json.loads(p.read_text()) for p in (site.root / "llm-exec.lock").glob("*.json")]
    seeded = sorted(
        (e for e in entries if "seed" in e["settings"]["decoding"]), key=lambda e: e["settings"]["decoding"]
    )
    assert [e["settings"]["decoding"] for e in seeded] == [
        "sampled with seed 3 (temperature 1.5, top-p 1), fp32",
        "sampled with seed 4 (temperature 1.5, top-p 1), fp32",
    ]
    assert all(e["outcome"]["batch_size"] == 1 for e in seeded)  # a draw never shares a batch
    assert seeded[0]["outcome"]["text"] != seeded[1]["outcome"]["text"]  # the seed decides the draw
    assert "sampled with seed 3 (temperature 1.5, top-p 1), fp32" in first
    pre = next(e for e in entries if e["settings"].get("prefill"))
    assert pre["outcome"]["input_text"].rstrip().endswith("good morning")
    for name in ("llm-exec.lock", ".cache", "site"):
        shutil.rmtree(site.root / name)
    caplog.clear()
    caplog.set_level("INFO")
    site.build()
    assert "4 blocks executed, 0 from cache" in caplog.text
    assert re.findall(r"<footer>.*?</footer>", site.html()) == re.findall(r"<footer>.*?</footer>", first)
    assert [
        re.sub(r"\d+\.\d+ s", "", p) for p in re.findall(r'<pre class="llmx-output">.*?</pre>', site.html(), re.S)
    ] == re.findall(r'<pre class="llmx-output">.*?</pre>', first, re.S)


def test_a_stop_sequence_on_a_fence_cuts_the_answer_and_says_why(site):
    site.write(
        "docs/index.md", "# S\n\n```generate model=instruct template=raw max_new_tokens=12 id=full\nthe cat sat\n```\n"
    )
    site.build()
    entry = next(json.loads(p.read_text()) for p in (site.root / "llm-exec.lock").glob("*.json"))
    word = entry["outcome"]["text"].split()[3]
    site.write(
        "docs/index.md",
        "# S\n\n```generate model=instruct template=raw max_new_tokens=12 id=full\nthe cat sat\n```\n\n"
        f'```generate model=instruct template=raw max_new_tokens=12 stop="{word}" id=cut\nthe cat sat\n```\n\n'
        f'[It stops at the word]{{check: cut.finish_reason == "stop" and full.text.startswith(cut.text)}}.\n',
    )
    site.build()
    assert "stopped: at a stop sequence (cut there)" in site.html()
    assert "llmx-claim-true" in site.html()


@pytest.mark.parametrize(
    "options, expected",
    [
        ("temperature=0.7", "temperature= only applies to sampling, and sampling needs a seed to be reproducible"),
        ("seed=x", "seed='x' is not a whole number"),
        ("seed=1 top_p=1.5", "top_p='1.5' is not a number above 0 and at most 1"),
        ("generation_prompt=no", "generation_prompt='no' is not true or false"),
        (
            "repetition_penalty=0",
            "docs/p.md:1: repetition_penalty='0' is not a number above 0 and at most 5\n"
            "  --> write e.g. repetition_penalty=1.3",
        ),
        ("repetition_penalty=lots", "repetition_penalty='lots' is not a number above 0 and at most 5"),
        ("repetition_penalty=6", "repetition_penalty='6' is not a number above 0 and at most 5"),
        ("repetition_penalty=nan", "repetition_penalty='nan' is not a number above 0 and at most 5"),
    ],
)
def test_bad_decoding_options_are_problems_with_the_fix(tmp_path, options, expected):
    found = find_blocks(f"```generate {options}\nhi\n```\n", page="docs/p.md", line_offset=0, project_dir=tmp_path)
    assert expected in found[0].message()


def test_stop_and_prefill_escapes_on_fences(tmp_path):
    block = find_blocks(
        '```generate stop="\\n" stop="." prefill="Sure:\\n"\nhi\n```\n', page="p", line_offset=0, project_dir=tmp_path
    )[0]
    assert block.request.stop == ("\n", ".") and block.request.prefill == "Sure:\n"


def test_a_repetition_penalty_is_read_from_a_fence_for_greedy_and_sampled_blocks(tmp_path):
    greedy, sampled = find_blocks(
        "```generate repetition_penalty=1.3\nhi\n```\n\n```generate seed=1 repetition_penalty=0.8\nhi\n```\n",
        page="p",
        line_offset=0,
        project_dir=tmp_path,
    )
    assert (
        greedy.request.repetition_penalty == 1.3 and greedy.request.describe() == "greedy, repetition penalty 1.3, fp32"
    )
    assert sampled.request.describe() == "sampled with seed 1 (temperature 1, top-p 1, repetition penalty 0.8), fp32"


PENALTY = """
# Penalty

```generate model=base template=raw max_new_tokens=12
the the the
```

```generate model=base template=raw max_new_tokens=12 repetition_penalty=3
the the the
```

```python exec
plain = base.generate("the the the", max_new_tokens=12, template="raw")
penalised = base.generate("the the the", max_new_tokens=12, template="raw", repetition_penalty=3.0)
assert penalised.decoding == "greedy, repetition penalty 3, fp32", penalised.decoding
print(json.dumps([plain.text, penalised.text]))
```
"""


def test_a_repetition_penalty_changes_what_a_tiny_model_writes_on_a_fence_and_in_a_snippet(site):
    site.write("docs/index.md", PENALTY.replace("```python exec\n", "```python exec\nimport json\n"))
    site.build()
    entries = [json.loads(p.read_text()) for p in (site.root / "llm-exec.lock").glob("*.json")]
    plain, penalised = sorted((e for e in entries if e["kind"] == "generate"), key=lambda e: e["index"])
    assert "repetition_penalty" not in plain["settings"] and penalised["settings"]["repetition_penalty"] == 3.0
    assert penalised["settings"]["decoding"] == penalised["outcome"]["decoding"] == "greedy, repetition penalty 3, fp32"
    assert penalised["outcome"]["batch_size"] == 1  # its left padding would count as seen tokens in a batch
    assert plain["outcome"]["text"] != penalised["outcome"]["text"]
    (code,) = [e for e in entries if e["kind"] == "code"]
    snippet = json.loads(code["outcome"]["output"])
    assert snippet == [plain["outcome"]["text"], penalised["outcome"]["text"]]  # the same generation by either route
    assert "greedy, repetition penalty 3, fp32" in site.html()
