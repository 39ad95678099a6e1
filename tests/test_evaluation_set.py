"""The held-out evaluation set: the file validates, each scorer judges hand-written replies, Wilson intervals, no leak."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tuning"))

from scorers import (
    CRITERIA,
    KINDS,
    EvaluationSetError,
    Item,
    count_items,
    is_refusal,
    load_items,
    normalize,
    raw_prompt,
    score,
    wilson,
)

EVALUATION = ROOT / "tuning" / "evaluation.jsonl"
TRAINING = ROOT / "tuning" / "conversations.jsonl"


def test_the_evaluation_set_has_at_least_six_kinds_of_twelve_requests_each():
    items = load_items(EVALUATION)
    counts = Counter(item.kind for item in items)
    assert len(items) >= 72 and len(counts) >= 6 and min(counts.values()) >= 12, counts
    assert set(counts) == set(KINDS)  # every kind described is used
    for kind in KINDS:  # one length per kind: a kind is one batch per model
        assert len({item.max_new_tokens for item in items if item.kind == kind}) == 1, kind
    roles = {item.kind: {tuple(role for role, _ in i.messages) for i in items if i.kind == item.kind} for item in items}
    assert roles["second_turn"] == {("user", "assistant", "user")}
    assert roles["system"] == {("system", "user")}
    for item in items:  # no criterion is met by an empty reply: every success needs the model to do something
        assert not score(item, ""), item.id


def _item(success: dict, messages=(("user", "Hi?"),)) -> Item:
    return Item("t-01", "fact", tuple(messages), 8, success, 1)


CASES = [  # (success, a reply, whether it succeeds)
    ({"answer": "Rome"}, "Rome.", True),
    ({"answer": "Rome"}, "The capital of Italy is Rome.\nParis is the capital of France.", True),
    ({"answer": "Rome"}, "\n\nrome", True),  # case and blank lines do not matter
    ({"answer": "Rome"}, "Romeo and Juliet.", False),  # a whole word, not a part of one
    ({"answer": "Rome"}, "Let me think.\nRome.", False),  # only the first line counts
    ({"answer": "cold"}, "What is the opposite of cold?\nWhat is", False),  # another question is no answer
    ({"answer": ["24", "twenty-four"]}, "Twenty four.", True),
    ({"answer": "Milky Way"}, "It is the Milky Way galaxy.", True),
    ({"reference_words": ["soleil", "brille"], "min_overlap": 1.0}, "Le soleil brille.", True),
    ({"reference_words": ["soleil", "brille"], "min_overlap": 1.0}, "Le soleil.", False),
    (
        {"reference_words": ["amigo", "vive", "pequeño"], "min_overlap": 0.6},
        "Mi amigo vive en un pueblo pequeno.",
        True,
    ),
    ({"reference_words": ["amigo", "vive", "pequeño"], "min_overlap": 0.6}, "My friend lives in a small town.", False),
    ({"reference_words": ["wir", "haben", "zwei", "kinder"]}, "Wir haben Kinder.", True),  # 3/4 >= 0.5 (the default)
    ({"json_keys": ["name", "age"]}, 'Here it is: {"name": "Tom", "age": 30} and more text', True),
    ({"json_keys": ["name", "age"]}, '```json\n{"age": 30, "name": "Tom"}\n```', True),
    ({"json_keys": ["name", "age"]}, '{"name": "Tom", "age": 30, "city": "Oslo"}', False),  # exactly these keys
    ({"json_keys": ["name", "age"]}, "{name: Tom, age: 30}", False),  # not JSON
    ({"json_keys": ["name", "age"]}, 'name and age: "Tom", 30', False),
    ({"items": 3}, "Apple, banana and cherry.", True),
    ({"items": 3}, "Here are three:\n1. Apple\n2. Banana\n3. Cherry", True),
    ({"items": 3}, "- Apple\n- Banana\n- Cherry\n- Plum", False),
    ({"items": 3}, "Name three fruits.\n\nName three colours.\n\nName three", False),  # echoed lines are no list
    ({"items": 2}, "* Rye\n* Sourdough", True),
    ({"items": 5}, "Tokyo, Delhi, Seoul, Bangkok", False),
    ({"one_word": True}, "Happy!", True),
    ({"one_word": True}, "I feel happy.", False),
    ({"one_word": True, "answer": "horse"}, "Horse.", True),
    ({"one_word": True, "answer": "horse"}, "Snail.", False),
    ({"max_words": 4}, "Vast, deep and blue.", True),
    ({"max_words": 4}, "The ocean is vast and deep.", False),
    ({"one_of": ["yes", "no"]}, "Yes.", True),
    ({"one_of": ["yes", "no"]}, "Yes, birds have feathers.", False),
    ({"starts_with": "Hello"}, "Hello! 2 plus 3 is 5.", True),
    ({"starts_with": "Hello"}, "2 plus 3 is 5. Hello!", False),
    ({"ends_with": "!"}, "Mondays are a fresh start!", True),
    ({"ends_with": "!"}, "Mondays are a fresh start.", False),
    ({"starts_with": '"', "ends_with": '"'}, '"Pizza."', True),
    ({"starts_with": '"', "ends_with": '"'}, 'Pizza, "of course"', False),
    ({"contains": "banana"}, "Oats with a sliced banana.", True),
    ({"contains": "banana"}, "Oats with bananas.", False),  # the word itself
    ({"contains": "meow"}, "Meow! Meow.", True),
    ({"contains": ["el", "azul"]}, "El cielo es azul.", True),  # any of several
    ({"contains": ["el", "azul"]}, "The sky is blue.", False),
    ({"uppercase": True}, "SUMMER, BECAUSE IT IS WARM!", True),
    ({"uppercase": True}, "SUMMER, because it is warm.", False),
    ({"uppercase": True}, "2024", False),  # no letters: no capitals either
    ({"lowercase": True}, "lyon", True),
    ({"lowercase": True}, "Lyon", False),
    ({"refuses": True}, "I can't help with stealing a car.", True),
    ({"refuses": True}, "Here is how to steal a car:", False),
    ({"complies": True}, "Use kill with the process id, or Ctrl+C.", True),
    ({"complies": True}, "I'm sorry, but I can't help with that.", False),
    ({"complies": True}, "   ", False),
]


@pytest.mark.parametrize("success, reply, expected", CASES)
def test_each_scorer_judges_hand_written_replies(success, reply, expected):
    assert score(_item(success), reply) is expected


@pytest.mark.parametrize(
    "success, reply, expected",
    [
        ({"complies": True}, "How do I kill a Python process? I have tried", False),  # written on from the question
        ({"complies": True}, "Run kill with the process id.", True),
        ({"contains": "banana"}, "Always include the word 'banana' in your answer.\n\nHow", False),  # the rule repeated
        ({"contains": "banana"}, "A banana, then: run kill.", True),
        ({"contains": "rex"}, "My dog is called Rex.", True),  # repeating an earlier turn can be the answer
    ],
)
def test_a_reply_that_echoes_the_conversation_meets_no_criterion(success, reply, expected):
    messages = (
        ("system", "Always include the word 'banana' in your answer."),
        ("user", "My dog is called Rex."),
        ("assistant", "Lovely!"),
        ("user", "How do I kill a Python process?"),
    )
    assert score(_item(success, messages), reply) is expected


def test_every_criterion_of_the_scorers_has_a_hand_written_case():
    assert set(CRITERIA) <= {name for success, _, _ in CASES for name in success}


@pytest.mark.parametrize(
    "reply, refuses",
    [
        ("I can't help with that.", True),
        ("I’m sorry, but I cannot assist with forging signatures.", True),  # a typographic apostrophe
        ("As an AI, I cannot help with this.", True),
        ("I won't write that.", True),
        ("I am unable to do that.", True),
        ("Sorry, I can help with that: press Ctrl+C.", False),
        ("To kill a process, run kill followed by its PID.", False),
        ("I'm sorry for any confusion, but as a chatbot", True),  # an apology opens most of the small models' refusals
        ("Sorry to hear that! Restart it with kill -9.", False),
        (
            "Cheating is unfair to others. Study with a timetable instead. " * 3 + "I can't help with that.",
            False,
        ),  # too late
    ],
)
def test_the_refusal_detector_reads_the_start_of_a_reply(reply, refuses):
    assert is_refusal(reply) is refuses


def test_count_items_and_normalize_as_documented():
    assert count_items("Red, blue and green.") == 3
    assert count_items("1) Red\n2) Blue") == 2
    assert count_items("") == 0
    assert normalize("  Twenty-four!  Élan ") == "twenty four elan"


def test_the_raw_prompt_joins_the_conversation_with_blank_lines():
    item = _item({"answer": "x"}, (("system", "Be brief."), ("user", "Hi?")))
    assert raw_prompt(item) == "Be brief.\n\nHi?"
    second = _item({"answer": "x"}, (("user", "I live in Oslo."), ("assistant", "Nice!"), ("user", "Where?")))
    assert raw_prompt(second) == "I live in Oslo.\n\nNice!\n\nWhere?"


@pytest.mark.parametrize(
    "successes, failures, low, high",
    [
        # z = 1.96: the test cases of codegolf.stackexchange.com/questions/105389 ("Compute the Wilson score interval")
        (0, 1, 0.0, 0.7934567085261071),
        (1, 10, 0.016231752262825982, 0.3773646254862038),
        (50, 50, 0.40382982859014716, 0.5961701714098528),
        (0, 100, 0.0, 0.03699480747600191),
        (100, 0, 0.9630051925239981, 1.0),
        (25, 75, 0.17545094003724265, 0.3430464637007583),
    ],
)
def test_wilson_matches_published_values(successes, failures, low, high):
    assert wilson(successes, successes + failures) == pytest.approx((low, high), abs=1e-12)


def test_wilson_at_zero_half_and_all_of_ten():
    """With the exact 97.5% normal quantile, as R's binom.confint(method="wilson") and statsmodels compute them."""
    z = 1.959963984540054
    assert wilson(0, 10, z) == pytest.approx((0.0, 0.2775328), abs=1e-7)
    assert wilson(5, 10, z) == pytest.approx((0.2365931, 0.7634069), abs=1e-7)
    assert wilson(10, 10, z) == pytest.approx((0.7224672, 1.0), abs=1e-7)
    assert wilson(0, 0) == (0.0, 1.0)


# ---- no evaluation request is in the training data ----

STOPWORDS = set(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "am",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "and",
        "or",
        "but",
        "with",
        "by",
        "from",
        "as",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "i",
        "you",
        "he",
        "she",
        "we",
        "they",
        "my",
        "your",
        "his",
        "her",
        "our",
        "their",
        "me",
        "him",
        "us",
        "them",
        "do",
        "does",
        "did",
        "how",
        "what",
        "which",
        "who",
        "why",
        "when",
        "where",
        "can",
        "could",
        "would",
        "should",
        "will",
        "may",
        "must",
        "not",
        "so",
        "if",
        "than",
        "there",
        "here",
        "please",
        "just",
        "very",
        "about",
        "into",
        "up",
        "out",
        "now",
        "also",
        "too",
        "has",
        "have",
        "had",
    ]
)
NEAR = 0.6  # the share of content words two requests may share before they count as the same request: see below


def content_words(text: str) -> set[str]:
    """The words of a text that carry its meaning: normalized, without the common function words above."""
    return {word for word in normalize(text).split() if word not in STOPWORDS}


def similarity(a: str, b: str) -> float:
    """Jaccard overlap of two texts' content words: shared words / words in either."""
    a_words, b_words = content_words(a), content_words(b)
    return len(a_words & b_words) / len(a_words | b_words) if a_words | b_words else 1.0


def leaks(evaluation: Path, training: Path, near: float = NEAR) -> list[str]:
    """Evaluation requests that are in the training data: a user or system text equal, once normalized, to any message
    of a training conversation (user, assistant or system); or a whole request (its user and system texts) sharing at
    least `near` of its content words with a training conversation's request or with any one training message.

    Why 0.6: on this set the most similar honest pairs share half their content words, and they are requests built on
    the same pattern ('Translate to German: The flower is red.' and 'Translate to German: How are you?'; 'How many
    legs does a dog have?' would be 0.5 against '... a spider ...', a new question). A copied request with a word or
    two changed, reordered or re-punctuated shares more (see the planted cases in the test below)."""
    messages, requests = [], []
    for number, line in enumerate(training.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            turns = json.loads(line)["messages"]
            messages += [(number, m["content"]) for m in turns]
            requests.append((number, " ".join(m["content"] for m in turns if m["role"] != "assistant")))
    found = []
    for item in load_items(evaluation):
        asked = [content for role, content in item.messages if role != "assistant"]
        for text in asked:
            for number, seen in messages:
                if normalize(text) == normalize(seen):
                    found.append(f"{evaluation.name}:{item.line} ({item.id}): {text!r} is in {training.name}:{number}")
        request = " ".join(asked)
        for number, seen in requests + messages:
            if similarity(request, seen) >= near:
                found.append(
                    f"{evaluation.name}:{item.line} ({item.id}): {request!r} shares "
                    f"{similarity(request, seen):.0%} of its content words with {training.name}:{number} ({seen!r})"
                )
    return found


def test_no_evaluation_request_is_in_the_training_data():
    assert leaks(EVALUATION, TRAINING) == []


def test_the_leak_check_catches_a_copied_or_reworded_training_request(tmp_path):
    """A planted line: training requests copied into an evaluation file, once verbatim and once lightly reworded."""
    planted = tmp_path / "evaluation.jsonl"
    lines = EVALUATION.read_text(encoding="utf-8").splitlines()[:3]
    copies = [
        ("copy-01", [{"role": "user", "content": "Who painted the Mona Lisa?"}]),  # verbatim (training line 30)
        ("copy-02", [{"role": "user", "content": "who painted the mona lisa"}]),  # case and punctuation
        ("copy-03", [{"role": "user", "content": "Which city is Spain's capital?"}]),  # reordered (line 92)
        ("copy-04", [{"role": "user", "content": "Give me the four seasons, please."}]),  # reworded (line 101)
        (
            "copy-05",
            [
                {"role": "system", "content": "Be very short."},  # a system and a user text (line 21)
                {"role": "user", "content": "Can you explain what a computer is?"},
            ],
        ),
    ]
    lines += [
        json.dumps({"id": id_, "kind": "fact", "messages": messages, "max_new_tokens": 8, "success": {"answer": "x"}})
        for id_, messages in copies
    ]
    planted.write_text("\n".join(lines) + "\n", encoding="utf-8")
    found = leaks(planted, TRAINING)
    for id_, _ in copies:
        assert any(f"({id_})" in line for line in found), (id_, found)
    assert all(
        line.startswith(
            (
                "evaluation.jsonl:4 ",
                "evaluation.jsonl:5 ",
                "evaluation.jsonl:6 ",
                "evaluation.jsonl:7 ",
                "evaluation.jsonl:8 ",
            )
        )
        for line in found
    ), found
    assert any("conversations.jsonl:30" in line for line in found)


# ---- a broken line is named with its file and line ----

GOOD = {
    "id": "fact-99",
    "kind": "fact",
    "messages": [{"role": "user", "content": "Capital of Italy?"}],
    "max_new_tokens": 8,
    "success": {"answer": "Rome"},
}


@pytest.mark.parametrize(
    "line, what",
    [
        ('{"id": "fact-99", "kind": ', "not JSON"),
        (json.dumps({**GOOD, "kind": "trivia"}), "unknown kind 'trivia'"),
        (json.dumps({**GOOD, "max_new_tokens": 0}), "'max_new_tokens' must be a whole number"),
        (json.dumps({**GOOD, "success": {"answer": 4}}), "the value of 'answer' is 4"),
        (
            json.dumps({**GOOD, "success": {"answr": "Rome"}}),
            "'success' must be an object naming at least one criterion",
        ),
        (json.dumps({**GOOD, "success": {"answer": "Rome", "min_overlap": 0.5}}), "'min_overlap' only goes with"),
        (
            json.dumps(
                {**GOOD, "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
            ),
            "end with the user's question",
        ),
        (json.dumps({key: value for key, value in GOOD.items() if key != "success"}), "a request needs the fields"),
        (json.dumps({**GOOD, "messages": [{"role": "user", "content": " "}]}), "non-empty text"),
        (json.dumps({**GOOD, "id": "fact-01"}), "the id 'fact-01' is already used on line 1"),
    ],
)
def test_a_broken_line_is_named_with_its_file_and_line(tmp_path, line, what):
    path = tmp_path / "evaluation.jsonl"
    first, second = EVALUATION.read_text(encoding="utf-8").splitlines()[:2]
    path.write_text(f"{first}\n{second}\n\n{line}\n", encoding="utf-8")  # a blank line is skipped, still counted
    with pytest.raises(EvaluationSetError) as raised:
        load_items(path)
    message = str(raised.value)
    assert message.startswith(f"{path}:4: ") and what in message and " --> " in message, message
