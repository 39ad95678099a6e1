"""Checked claims: sentences about outputs are evaluated over the recorded outcomes at every build."""

from __future__ import annotations

import json
import textwrap

import pytest
from mkdocs.exceptions import Abort

from llmexec.plan.claims import find_claims
from llmexec.present.checks import evaluate
from llmexec.present.evidence import Answer, Generated

PAGE = """
# Claims

```generate model=both max_new_tokens=5 id=hi
Say hi
```

[The base model runs until the
limit cuts it off]{check: hi.base.finish_reason == "length"}, and
[it writes exactly five tokens]{check: hi.base.new_tokens == 5}.

```python exec id=two
print(1 + 1)
```

[The block prints the code it ran]{check: "ran: print(1 + 1)" in two.output}.
"""


def test_a_true_claim_is_marked_and_links_to_its_evidence(bare_site, fake):
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    html = bare_site.html()
    assert html.count('class="llmx-claim llmx-claim-true"') == 3
    assert (
        '<span class="llmx-claim llmx-claim-true">The base model runs until the\nlimit cuts it off<a class="llmx-check" href="#llmx-hi"'
        in html
    )
    assert 'id="llmx-hi"' in html and 'id="llmx-two"' in html  # the evidence the marks link to
    assert (
        "Checked against the recorded output when this site was built: hi.base.finish_reason == &quot;length&quot;"
        in html
    )
    assert "{check:" not in html


def test_a_false_claim_fails_the_strict_build_with_line_sentence_block_and_output(bare_site, fake, caplog):
    bare_site.write("docs/index.md", PAGE.replace('finish_reason == "length"', 'finish_reason == "eos"'))
    with pytest.raises(Abort):
        bare_site.build()
    assert (
        "docs/index.md:7: this sentence is not true of the output it describes: "
        '"The base model runs until the limit cuts it off"'
    ) in caplog.text
    assert "about: the block id=hi at docs/index.md:3" in caplog.text
    assert "hi.base.finish_reason = 'length'" in caplog.text
    assert caplog.text.count("this sentence is not true") == 1  # the other two claims hold


def test_without_strict_the_page_shows_the_false_claim(bare_site, fake):
    bare_site.write("docs/index.md", PAGE.replace("new_tokens == 5", "new_tokens < 3"))
    bare_site.build(strict=False)
    html = bare_site.html()
    assert '<span class="llmx-claim llmx-claim-false">it writes exactly five tokens' in html
    assert "FAILED when this site was built: hi.base.new_tokens &lt; 3&#10;hi.base.new_tokens = 5" in html


@pytest.mark.parametrize(
    "check, expected",
    [
        ("hello.base.text", "no block on this page has id=hello (the ids here: hi, two)"),
        ("hi.base.text ==", "the check is not a Python expression"),
        ("hi.__class__", "the check reads the private attribute '__class__'"),
        ("(lambda: 1)()", "the check uses Lambda, which claims do not allow"),
        ("hi.text", "the generate block at docs/index.md:3 has answers from base, instruct, so write e.g. .base.text"),
        ("two.notes.p < 0.1", "no note 'p' (the block noted: nothing)"),
        (
            "list(zip(hi.base.lines, hi.base.lines))",
            "zip() is not one of the functions a check may call (those are: len,",
        ),
    ],
)
def test_a_broken_check_is_an_error_that_says_how_to_write_it(bare_site, fake, caplog, check, expected):
    bare_site.write("docs/index.md", PAGE + f"\n[A sentence]{{check: {check}}}\n")
    with pytest.raises(Abort):
        bare_site.build()
    assert 'docs/index.md:17: cannot check the sentence "A sentence"' in caplog.text
    assert expected in caplog.text


def test_claim_syntax_inside_code_is_left_alone():
    markdown = textwrap.dedent("""
        Write `[a sentence]{check: x.text}` to check a sentence.

        ```markdown
        [a sentence]{check: x.text}
        ```

        [Real]{check: {"a": 1}["a"] == 1} and [a link](https://example.org) and [[nested] brackets]{check: True}.
        """)
    found = find_claims(markdown, page="docs/p.md", line_offset=0)
    assert [(c.line, c.sentence, c.expression) for c in found] == [
        (8, "Real", '{"a": 1}["a"] == 1'),
        (8, "[nested] brackets", "True"),
    ]
    assert [evaluate(c, {}).state for c in found] == ["true", "true"]


def test_each_kind_of_check_fails_on_an_output_that_contradicts_it():
    answer = Answer("base", "Paris is the capital.", "length", 5, 7, "<bos>The capital", 5)
    results = {"q": Generated("docs/p.md:3", {"base": answer})}

    def state(check: str) -> str:
        return evaluate(find_claims(f"[s]{{check: {check}}}", page="p", line_offset=0)[0], results).state

    holds = [
        "all(int(n) > 0 for n in [q.new_tokens, q.input_tokens])",
        'any(w == "Paris" for w in words(q.text))',
        '"Paris" in q.text',
        "q.hit_limit",
        "q.new_tokens == 5",
        "q.input_tokens > 3",
        'q.first_line.startswith("Paris")',
        'matches(r"capital\\.$", q.text)',
        "len(words(q.text)) == 4",
        "not q.ended_turn",
    ]
    broken = [
        "all(int(n) > 5 for n in [q.new_tokens, q.input_tokens])",
        'any(w == "Rome" for w in words(q.text))',
        '"Rome" in q.text',
        "q.ended_turn",
        "q.new_tokens < 5",
        "q.input_tokens > 30",
        'q.first_line.startswith("Rome")',
        'matches(r"^capital", q.text)',
        "len(words(q.text)) == 3",
        "not q.hit_limit",
    ]
    assert [state(c) for c in holds] == ["true"] * len(holds)
    assert [state(c) for c in broken] == ["false"] * len(broken)


def edit_lockfile(site, change) -> None:
    for path in (site.root / "llm-exec.lock").glob("*.json"):
        data = json.loads(path.read_text())
        if change(data):
            path.write_text(json.dumps(data, sort_keys=True, ensure_ascii=False, indent=1) + "\n")


def test_swapped_outputs_break_exactly_the_claims_about_them_in_locked_mode_without_torch(bare_site, fake):
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    ok = bare_site.build_cli(env={"LLM_EXEC_MODE": "locked"}, prelude=BLOCK_TORCH)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "3 claims checked, 0 false or broken" in ok.stderr

    def swap(data) -> bool:  # the base model now "ends its turn" after 2 tokens
        if data["role"] == "base":
            data["outcome"].update(finish_reason="eos", new_tokens=2)
            return True
        return False

    edit_lockfile(bare_site, swap)
    broken = bare_site.build_cli(env={"LLM_EXEC_MODE": "locked"}, prelude=BLOCK_TORCH)
    assert broken.returncode != 0
    assert (
        'docs/index.md:7: this sentence is not true of the output it describes: "The base model runs until the limit cuts it off"'
        in broken.stderr
    )
    assert (
        'docs/index.md:9: this sentence is not true of the output it describes: "it writes exactly five tokens"'
        in broken.stderr
    )
    assert broken.stderr.count("this sentence is not true") == 2 and "ModuleNotFoundError" not in broken.stderr
    preview = bare_site.build_cli(env={"LLM_EXEC_MODE": "preview"}, prelude=BLOCK_TORCH)  # checked there too,
    assert preview.returncode == 0 and preview.stderr.count("this sentence is not true") == 2  # but only marked
    assert bare_site.html().count("llmx-claim-false") == 2  # (.github/preview-build.sh fails the check after)


def test_preview_checks_claims_and_the_report_lists_the_ones_new_outputs_break(bare_site, fake, monkeypatch, tmp_path):
    bare_site.write("docs/index.md", PAGE)
    bare_site.build()
    monkeypatch.setenv("LLM_EXEC_MODE", "verify")
    monkeypatch.setenv("LLM_EXEC_REPORT", str(tmp_path / "report.md"))
    bare_site.write("docs/index.md", PAGE.replace("new_tokens == 5", "new_tokens == 4"))
    with pytest.raises(Abort):
        bare_site.build()
    report = (tmp_path / "report.md").read_text()
    assert "## Sentences these outputs make false (1)" in report
    assert "- `docs/index.md:9`: it writes exactly five tokens" in report
    monkeypatch.setenv("LLM_EXEC_MODE", "preview")
    bare_site.write("docs/index.md", PAGE.replace("Say hi", "Say bye"))  # not executed: its claims stay unchecked
    bare_site.build()
    html = bare_site.html()
    assert html.count("llmx-claim-unchecked") == 2 and html.count("llmx-claim-true") == 1


BLOCK_TORCH = textwrap.dedent("""
    import builtins
    _real_import = builtins.__import__
    def _no_torch(name, *args, **kwargs):
        if name.split(".")[0] in ("torch", "transformers"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return _real_import(name, *args, **kwargs)
    builtins.__import__ = _no_torch
""")


def test_code_blocks_note_values_for_claims_with_the_real_worker(site, caplog):
    site.write(
        "docs/index.md",
        """
        # Notes

        ```python exec id=probs
        import torch
        p = torch.tensor(0.25)
        note(p=p, label="low", tokens=[1, 2])
        print("noted")
        ```

        [The probability is below a half]{check: probs.notes.p < 0.5 and probs.notes["label"] == "low"},
        [and the block printed once]{check: probs.lines == ["noted"]}.

        ```python exec
        note(bad=object())
        ```
        """,
    )
    with pytest.raises(Abort):
        site.build()
    assert "docs/index.md:13: code block raised an exception" in caplog.text
    assert "note(bad=...) takes numbers, strings, booleans and lists or dicts of them, not object" in caplog.text
    assert "this sentence is not true" not in caplog.text and "cannot check" not in caplog.text
    entry = next(
        json.loads(p.read_text())
        for p in (site.root / "llm-exec.lock").glob("*.json")
        if "note(p=p" in json.loads(p.read_text())["source"]
    )
    assert entry["outcome"]["notes"] == {"p": 0.25, "label": "low", "tokens": [1, 2]}
    assert site.html().count("llmx-claim-true") == 2
