"""Loading the knowledge base: the format, and one clear error for every kind of bad file."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.knowledge_base import (
    Entry,
    KnowledgeBase,
    KnowledgeBaseError,
    load_knowledge_base,
    parse_knowledge_base,
)

GOOD = """\
greetings: [ahoy]
entries:
  - question: How long does shipping take?
    alternatives:
      - When will my order arrive?
      - delivery time
    answer: 3-5 days.
  - question: Can I return it?
    answer: Within 30 days.
"""


def test_a_good_file_loads_every_entry_in_order(tmp_path: Path) -> None:
    path = tmp_path / "kb.yaml"
    path.write_text(GOOD, encoding="utf-8")
    assert load_knowledge_base(path) == KnowledgeBase(
        entries=(
            Entry(
                "How long does shipping take?",
                ("When will my order arrive?", "delivery time"),
                "3-5 days.",
            ),
            Entry("Can I return it?", (), "Within 30 days."),
        ),
        greetings=("ahoy",),
    )


def test_phrasings_are_the_question_then_the_alternatives() -> None:
    entry = parse_knowledge_base(GOOD).entries[0]
    assert entry.phrasings == (
        "How long does shipping take?",
        "When will my order arrive?",
        "delivery time",
    )


ONE_GOOD_ENTRY = "  - {question: 'Where is my order?', answer: On its way.}\n"


@pytest.mark.parametrize(
    ("text", "index", "field", "expected"),
    [
        ("", None, None, "entries: the file is empty"),
        ("- a\n- b\n", None, None, "top level: must be a mapping"),
        ("greetings: [hi]\n", None, None, "entries: required key is missing"),
        ("entries: []\n", None, None, "entries: must be a non-empty list"),
        ("entries: {question: q}\n", None, None, "entries: must be a non-empty list"),
        ("entries:\n" + ONE_GOOD_ENTRY + "faq: []\n", None, None, "faq: unknown key"),
        ("greetings: hi\nentries:\n" + ONE_GOOD_ENTRY, None, None, "greetings: must be a list"),
        ("greetings: [hi, '!!']\nentries:\n" + ONE_GOOD_ENTRY, None, None, "greetings[1]: must be"),
        (
            "entries:\n" + ONE_GOOD_ENTRY + "  - just a string\n",
            1,
            None,
            "entries[1] (line 3): must be a mapping",
        ),
        (
            "entries:\n" + ONE_GOOD_ENTRY + "  - {answer: yes}\n",
            1,
            "question",
            "entries[1].question (line 3): required key is missing",
        ),
        (
            "entries:\n" + ONE_GOOD_ENTRY + "  - {question: 'Do you ship abroad?'}\n",
            1,
            "answer",
            "entries[1].answer (line 3): required key is missing",
        ),
        (
            "entries:\n" + ONE_GOOD_ENTRY + "  - {question: 'Do you ship abroad?', answer: 42}\n",
            1,
            "answer",
            "entries[1].answer (line 3): must be text, not int",
        ),
        (
            "entries:\n  - {question: '   ', answer: a}\n",
            0,
            "question",
            "entries[0].question (line 2): must not be empty",
        ),
        (
            "entries:\n  - {question: q, alternatives: one phrasing, answer: a}\n",
            0,
            "alternatives",
            "entries[0].alternatives (line 2): must be a list of phrasings",
        ),
        (
            "entries:\n  - {question: q, alternatives: [x, ''], answer: a}\n",
            0,
            "alternatives[1]",
            "entries[0].alternatives[1] (line 2): must not be empty",
        ),
        (
            "entries:\n  - {question: q, alternatives: [x, null], answer: a}\n",
            0,
            "alternatives[1]",
            "entries[0].alternatives[1] (line 2): must not be empty",
        ),
        (
            "entries:\n  - {question: q, alternatives: [x, '???'], answer: a}\n",
            0,
            "alternatives[1]",
            "entries[0].alternatives[1] (line 2): must contain at least one word",
        ),
        (
            "entries:\n  - {question: q, alternates: [x], answer: a}\n",
            0,
            "alternates",
            "entries[0].alternates (line 2): unknown key",
        ),
        (
            "entries:\n"
            + ONE_GOOD_ENTRY
            + "  - question: Track my parcel\n    alternatives: [WHERE is my order]\n    answer: a\n",
            1,
            "alternatives[0]",
            "entries[1].alternatives[0] (line 3): 'WHERE is my order' is already a phrasing of entries[0]",
        ),
        ("entries:\n  - {question: q, answer: a\n", None, None, "invalid YAML at line 3"),
        ("entries:\n\t- x\n", None, None, "invalid YAML at line 2, column 1"),
    ],
)
def test_a_bad_file_is_rejected_with_the_entry_and_field_named(
    text: str, index: int | None, field: str | None, expected: str
) -> None:
    with pytest.raises(KnowledgeBaseError) as caught:
        parse_knowledge_base(text, source="kb.yaml")
    message = str(caught.value)
    assert message.startswith("kb.yaml: ")
    assert expected in message
    assert "\n" not in message
    assert caught.value.index == index
    assert caught.value.field == field


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(KnowledgeBaseError, match=r"nope\.yaml: cannot read: No such file"):
        load_knowledge_base(path)


def test_a_file_that_is_not_utf8_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("entries:\n  - {question: Où?, answer: Là}\n".encode("latin-1"))
    with pytest.raises(KnowledgeBaseError, match=r"latin1\.yaml: not UTF-8 text"):
        load_knowledge_base(path)


def test_a_bad_reload_leaves_what_was_loaded_untouched(tmp_path: Path) -> None:
    """Loading is all or nothing: the caller keeps its old knowledge base when a reload fails."""
    path = tmp_path / "kb.yaml"
    path.write_text(GOOD, encoding="utf-8")
    loaded = load_knowledge_base(path)
    path.write_text(GOOD + "  - {question: Half written\n", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match="invalid YAML"):
        loaded = load_knowledge_base(path)
    assert loaded == parse_knowledge_base(GOOD)
