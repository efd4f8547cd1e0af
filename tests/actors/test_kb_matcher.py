"""The matcher: how text becomes terms, and the pruned search agreeing with scoring every entry."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.kb_matcher import MAX_CHARS, KnowledgeIndex, terms, words
from actors.knowledge_base import load_knowledge_base, parse_knowledge_base

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = KnowledgeIndex(load_knowledge_base(ROOT / "knowledge_base.yaml"))


def _zipf_kb(entries: int, seed: int) -> KnowledgeIndex:
    """A base where a few words are in many entries, as real ones are ("order", "size")."""
    rng = random.Random(seed)
    vocabulary = [f"w{i}x" for i in range(3 * entries)]
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    lines = ["entries:"]
    for i in range(entries):
        topic = rng.choices(vocabulary, weights, k=5)
        lines.append(f"  - question: how do I {' '.join(topic[:3])} {i}")
        lines.append(f"    alternatives: ['where is {' '.join(topic[2:])} {i}']")
        lines.append(f"    answer: answer {i} {rng.choice(vocabulary)}")
    return KnowledgeIndex(parse_knowledge_base("\n".join(lines)))


ZIPF = _zipf_kb(300, seed=3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("How long does shipping take?", ["how", "long", "ship", "take"]),
        ("shipped ships SHIPPING", ["ship", "ship", "ship"]),
        ("Where's my parcel?!", ["where", "parcel"]),
        ("I don't like the sizes", ["size"]),
        ("deliveries", ["delivery"]),
        ("how are you?", ["how", "are", "you"]),
        ("please, thanks!!", ["thank"]),
        ("the", []),
        ("🙂", []),
    ],
)
def test_terms_drop_stop_words_and_stem(text: str, expected: list[str]) -> None:
    assert terms(text) == expected


def test_only_the_start_of_a_long_text_is_matched() -> None:
    assert len(words("ab " * MAX_CHARS)) == MAX_CHARS // 3 + 1


def test_no_shared_word_is_no_match() -> None:
    assert SHIPPED.best(words("my cat is sick")) is None
    assert SHIPPED.ranking(words("my cat is sick")) == []


def test_an_exact_phrasing_scores_one() -> None:
    found = SHIPPED.best(words("WHERE IS MY ORDER???"))
    assert found is not None
    pid, score = found
    assert (SHIPPED.text[pid], score) == ("Where is my order?", 1.0)


def test_ranking_lists_competing_entries_best_first() -> None:
    ranking = SHIPPED.ranking(words("how much is shipping"))
    scores = [score for _, score in ranking]
    assert scores == sorted(scores, reverse=True)
    assert len({SHIPPED.owner[pid] for pid, _ in ranking}) == len(ranking) > 1
    assert SHIPPED.text[ranking[0][0]] == "How much does shipping cost?"


def _query(index: KnowledgeIndex) -> st.SearchStrategy[list[str]]:
    known = sorted({w for text in index.text for w in words(text)})
    junk = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=9)
    return st.lists(st.one_of(st.sampled_from(known), junk), max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_pruned_search_finds_the_best_score_of_all_entries(data: st.DataObject) -> None:
    index = data.draw(st.sampled_from([SHIPPED, ZIPF]))
    ws = data.draw(_query(index))
    found = index.best(ws)
    ranking = index.ranking(ws)
    top = ranking[0][1] if ranking else 0.0
    if found is not None and found[1] == 1.0:
        return  # nothing scores higher (and an exact phrasing scores 1 whatever its terms)
    score = found[1] if found else 0.0
    assert 0.0 <= score <= 1.0
    if top >= 0.3:
        assert score == pytest.approx(top)
    else:
        assert score <= top + 1e-9
