"""Another CPU's float noise verifies; a forged text, number or figure does not (resolve.tolerance, about())."""

from __future__ import annotations

import base64
import json
import shutil

import pytest
from mkdocs.exceptions import Abort

from llmexec.present.checks import about
from llmexec.resolve.tolerance import RELATIVE, difference, same, text_difference

PAGE = """\
# Tolerance

```python exec id=r
import matplotlib.pyplot as plt

x = 2 / 3
print(f"loss {x:.4f} after 3 steps")
note(x=x, steps=3)
plt.plot([1, 2, 3], [4.5, x, 0.5])
```

```generate model=base max_new_tokens=4
The capital of France is
```

[The loss ends near 0.67]{check: about(r.notes.x, 0.67)}.
"""


def test_printed_numbers_allow_relative_noise_and_a_rounding_flip_but_not_more():
    assert text_difference("output", "loss 1.1234\n", "loss 1.1235\n") is None  # one unit of the last digit
    assert text_difference("output", "loss 4.51 → 1.12", "loss 4.52 → 1.12") is None  # 4.514999… and 4.515001…
    assert text_difference("output", "p = 0.30000000000000004", "p = 0.3000000000000001") is None  # 1e-16 relative
    forged = text_difference("output", "step 2\nloss 1.1234\n", "step 2\nloss 1.1334\n")
    assert forged and (forged.line, forged.column) == (2, 6) and "1.1234 is now 1.1334" in forged.why
    assert f"{RELATIVE:g} relative" in forged.why
    assert text_difference("output", "0.5", "0.7")  # two units of a one-digit number
    assert text_difference("output", "3 steps", "4 steps")  # integers are exact
    assert text_difference("output", "version 5.24.0", "version 5.24.1")  # not a number: a version
    assert text_difference("output", "id c8e1f", "id c8e2f")  # nor inside a hash


def test_noted_values_compare_floats_within_the_relative_tolerance_and_the_rest_exactly():
    old = {"output": "", "notes": {"margins": [7.7712345, 7.6456789], "kept": [False, True], "n": 5, "word": "Paris"}}
    assert same(old, {**old, "notes": {**old["notes"], "margins": [7.7712346, 7.6456788]}})
    for changed in ({"margins": [0.5, 7.6456789]}, {"kept": [True, True]}, {"n": 6}, {"word": "Rome"}):
        found = difference(old, {**old, "notes": {**old["notes"], **changed}})
        assert found and found.field.startswith(f"notes.{next(iter(changed))}")
    assert difference({"notes": {"p": 0.5}}, {"notes": {"p": 0.6}}).why == "differs by 0.17 relative, beyond 0.0001"
    assert difference({"text": "Paris", "new_tokens": 2}, {"text": "Paris.", "new_tokens": 2}).field == "text"


def test_about_holds_within_one_unit_of_the_stated_last_digit():
    assert about(7.6449, 7.65) and about(7.64, 7.65) and about(7.66, 7.65)
    assert not about(7.6399, 7.65) and not about(7.661, 7.65)
    assert about(4.5094, 4.5) and not about(4.61, 4.5)
    assert about(0.0699, 0.07) and not about(0.081, 0.07)
    assert about(4.505, "4.50") and not about(4.52, "4.50")  # a string keeps the zeros a sentence prints
    assert about(3.9, 3) and not about(22, 20)  # 20 states units: 19 to 21
    with pytest.raises(TypeError):
        about("7.65", 7.65)


def _entries(lock):
    found = {}
    for path in lock.glob("*.json"):
        data = json.loads(path.read_text())
        found[data["kind"]] = (path, data)
    return found


def _write(path, data) -> None:
    path.write_text(json.dumps(data, sort_keys=True, ensure_ascii=False, indent=1) + "\n")


def _other_cpu(data):
    """What an honest run on another CPU records: floats moved around the 7th digit, a printed rounding flip,
    other PNG bytes."""
    outcome = data["outcome"]
    outcome["notes"]["x"] *= 1 + 3e-7
    outcome["output"] = outcome["output"].replace("0.6667", "0.6666")
    bundle = outcome["rich"][0]
    figure = json.loads(bundle["application/vnd.llm-exec.figure+json"])
    figure["axes"][0]["lines"][0]["xy"][1][1] *= 1 - 2e-7
    bundle["application/vnd.llm-exec.figure+json"] = json.dumps(figure, sort_keys=True)
    bundle["image/png"] = base64.b64encode(base64.b64decode(bundle["image/png"]) + b"\0").decode()
    return data


def test_verify_accepts_float_noise_and_refuses_forgeries(site, monkeypatch, tmp_path, caplog):
    site.write("docs/index.md", PAGE)
    site.build()  # auto: records the lockfile
    lock = site.root / "llm-exec.lock"
    path, data = _entries(lock)["code"]
    assert "application/vnd.llm-exec.figure+json" in data["outcome"]["rich"][0]  # the figure's data is recorded
    pristine = tmp_path / "pristine"
    shutil.copytree(lock, pristine)

    _write(path, _other_cpu(data))
    noisy = path.read_bytes()
    monkeypatch.setenv("LLM_EXEC_MODE", "refresh")  # `make lock` on the other laptop: executes, rewrites nothing
    site.build()
    assert path.read_bytes() == noisy  # within the tolerance: the entry is kept byte for byte
    monkeypatch.setenv("LLM_EXEC_MODE", "verify")
    monkeypatch.setenv("LLM_EXEC_REPORT", str(tmp_path / "report.md"))
    site.build()  # no drift
    report = (tmp_path / "report.md").read_text()
    assert "Every executed block matches the committed lockfile" in report and f"relative {RELATIVE:g}" in report

    forgeries = {
        "a noted number": (lambda d: d["outcome"]["notes"].update(x=0.7), "of notes.x (differs by"),
        "a printed number": (
            lambda d: d["outcome"].update(output="loss 0.6767 after 3 steps\n"),
            "0.6767 is now 0.6667",
        ),  # the lockfile says 0.6767; this machine prints 0.6667
        "a printed integer": (
            lambda d: d["outcome"].update(output="loss 0.6667 after 4 steps\n"),
            "text is compared exactly",
        ),
        "the figure's data": (
            lambda d: d["outcome"]["rich"][0].update(
                {
                    "application/vnd.llm-exec.figure+json": d["outcome"]["rich"][0][
                        "application/vnd.llm-exec.figure+json"
                    ].replace("4.5", "5.5")
                }
            ),
            "of rich[0].figure.axes[0].lines[0].xy[0][1]",
        ),
        "a generated text": (lambda d: d["outcome"].update(text="Paris."), "of text (text is compared exactly)"),
    }
    for name, (forge, expected) in forgeries.items():
        shutil.rmtree(lock)
        shutil.copytree(pristine, lock)
        path, data = _entries(lock)["generate" if name == "a generated text" else "code"]
        forge(data)
        _write(path, data)
        caplog.clear()
        with pytest.raises(Abort):
            site.build()
        assert "the output differs from its lockfile entry" in caplog.text, name
        assert expected in caplog.text, (name, caplog.text)
        assert f"within a relative {RELATIVE:g}" in caplog.text, name  # the message states the tolerance


def test_numbers_from_retrained_tuned_weights_get_the_wider_stated_tolerance_only_when_the_hash_differs():
    from llmexec.resolve.tolerance import RETRAINED, compare

    def entry(sha: str, notes: dict) -> dict:
        return {"models": {"tuned": {"identity": "tuned-sha256:r", "weights_sha256": sha}}, "outcome": {"notes": notes}}

    lock = entry("a" * 64, {"loss": 1.0978, "p": 0.0031, "tokens": ["Leonardo"]})
    moved = {"loss": 1.0969, "p": 0.0032, "tokens": ["Leonardo"]}  # measured: the AVX2-retrained model's values
    assert compare(lock, entry("b" * 64, moved)) is None  # other weights: within RETRAINED or one unit
    assert compare(lock, entry("a" * 64, moved))  # the same weights: the tight tolerance applies
    for forged in ({"loss": 1.1978}, {"loss": 1.1078}, {"p": 0.0041}, {"tokens": ["William"]}):
        found = compare(lock, entry("b" * 64, {**moved, **forged}))
        assert found, forged
    assert f"{RETRAINED:g}" in compare(lock, entry("b" * 64, {**moved, "loss": 1.1978})).why
