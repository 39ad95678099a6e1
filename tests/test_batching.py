"""Generation is batched across the whole site, and batching never changes an output."""

from __future__ import annotations

import logging
import re

PROMPTS = [
    "hello",
    "the cat sat on the mat",
    "good morning my friend",
    "translate to french : hello world !",
    "a dog",
    "the the the",
    "my friend sat on a dog , the cat sat on the mat",
]


def generations(html: str) -> list[str]:
    return re.findall(r'<pre class="llmx-(?:input|output)"><code>(.*?)</code></pre>', html, re.S)


def test_every_generate_block_of_the_site_goes_to_the_runner_in_one_call(bare_site, fake):
    for n in range(3):
        bare_site.write(
            f"docs/page{n}.md", f"# P{n}\n\n```generate\nfirst {n}\n```\n\n```generate model=base\nsecond {n}\n```\n"
        )
    bare_site.build()
    (runner,) = fake
    assert len(runner.generate_calls) == 1
    sent = [(r.model, r.request.prompt) for r in runner.generate_calls[0]]
    assert len(sent) == len(set(sent)) == 9  # in page order; the worker groups them into batches


def test_the_worker_groups_the_sites_prompts_into_one_batch_per_model_whatever_their_lengths(site, caplog):
    caplog.set_level("INFO")
    for n in range(2):
        site.write(
            f"docs/page{n}.md",
            f"# P{n}\n\n```generate max_new_tokens=3\nhello {n}\n```\n\n"
            f"```generate model=base max_new_tokens=4\nworld {n}\n```\n",
        )
    site.write("docs/long.md", "# L\n\n```generate model=base max_new_tokens=9\nlong\n```\n")
    site.build()
    batches = re.findall(r"generating batch \d/(\d): (\w+) model, (\d) prompt\(s\), (\d) new tokens", caplog.text)
    # limits 3 and 4 share a batch; 9 is more than twice the batch's shortest, so it gets its own; each model's
    # batches are numbered in its own lane (worker/lanes.py: the two models' children run at once)
    assert sorted(batches) == [("1", "instruct", "2", "3"), ("2", "base", "1", "9"), ("2", "base", "4", "4")]


def test_rows_with_their_own_token_limits_and_stop_strings_in_one_batch_get_what_they_get_alone(tiny_models):
    """A batch runs to its longest row's limit; each row is cut at its own limit and stop strings, and greedy fp32
    gives it exactly the tokens, text and finish reason it gets in a batch of one."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmexec.core.models import ModelSpec
    from llmexec.core.request import Request
    from llmexec.worker.models import LoadedModel

    folder = tiny_models["instruct"]
    model = LoadedModel(
        ModelSpec("instruct", "path", str(folder)),
        AutoTokenizer.from_pretrained(folder),
        AutoModelForCausalLM.from_pretrained(folder).eval(),
    )
    stops = [(), ("world", "!"), ("x",), (": : :",), (), ("nothing",), ()]
    rows = [
        Request(p, max_new_tokens=3 + 4 * (i % 4), stop=stops[i], template="raw" if i % 2 else "auto")
        for i, p in enumerate(PROMPTS)
    ]
    alone = [model.generate_batch([r])[0] for r in rows]
    batched = model.generate_batch(rows)
    seen = lambda g: (g.input_text, g.text, g.finish_reason, g.new_tokens)  # noqa: E731
    assert [seen(g) for g in batched] == [seen(g) for g in alone]
    assert {g.finish_reason for g in alone} >= {"length", "stop"}  # both cuts are exercised
    assert len({g.new_tokens for g in alone if g.finish_reason == "length"}) > 1  # rows of different limits


def test_duplicate_prompts_are_generated_once(bare_site, fake):
    bare_site.write("docs/a.md", "# A\n\n```generate model=base\nsame\n```\n")
    bare_site.write("docs/b.md", "# B\n\n```generate model=base\nsame\n```\n\n```generate model=base\nsame\n```\n")
    bare_site.build()
    assert [len(c) for c in fake[0].generate_calls] == [1]


def test_batched_outputs_equal_one_at_a_time_outputs(site, caplog):
    caplog.set_level(logging.INFO, logger="mkdocs")
    page = "# B\n\n" + "\n".join(f"```generate max_new_tokens={8 + i % 3}\n{p}\n```\n" for i, p in enumerate(PROMPTS))
    site.write("docs/index.md", page)
    site.llm_exec["batch_size"] = 8
    site.build()
    batched = generations(site.html())
    assert re.search(r"generating batch 1/1: base model, 7 prompt\(s\), 10 new tokens at most", caplog.text)
    site.llm_exec.update(batch_size=1, cache_dir=".cache/unbatched", lockfile="unbatched.lock")
    site.build()
    assert "generating batch 14/14: " in caplog.text  # 7 prompts x 2 models, one at a time: one prompt per batch
    assert generations(site.html()) == batched
    assert len(batched) == 4 * len(PROMPTS)
