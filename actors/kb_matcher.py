"""Matching a customer's words against the knowledge base: the index and the confidence score.

Owns: how text becomes terms (normalised words, stop words dropped, light stemming), the
`KnowledgeIndex` built once per knowledge base, and the score in [0, 1] it gives the best entry.

The score is a soft TF-IDF F-measure. Each query term is paired with knowledge base terms by
rapidfuzz's `fuzz.ratio` (so "shiping" finds "shipping"), terms weigh by how rare they are across
entries, and question words ("where", "when") weigh a little. Recall is how much of the question an
entry explains (over all its phrasings, with words of its answer counting 0.6); precision is how
much of its best-covered phrasing was asked. Recall weighs more (F with beta 1.5). A word the
knowledge base has never seen counts like the rarest word, so "what's the weather like?" scores 0
and "can you track my phone?" stays below 0.6. An exact phrasing (case and punctuation aside) is 1.

Cost: candidates come from an inverted index of content terms, so a reply touches only phrasings
sharing a content word with the question; fuzzy lookups of unknown words scan the vocabulary once
and are cached.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from actors.bot import normalise
from actors.knowledge_base import KnowledgeBase

__all__ = ["MAX_CHARS", "KnowledgeIndex", "terms", "words"]

MAX_CHARS = 1_000
"""Only this many leading characters of a message are matched."""
_MAX_TERMS = 64
_FUZZY_CUTOFF = 80.0  # fuzz.ratio below this is no match between two words
_FUZZY_MIN_LEN = 4  # shorter words only match exactly
_FUZZY_MAX_LEN = 40  # longer "words" are noise
_BETA = 1.5  # recall weighs more than precision
_QUESTION_WEIGHT = 0.5  # content words weigh 1 (in every entry) to ~1 + ln(entries)
_ANSWER_FACTOR = 0.6  # a query word found only in an entry's answer counts this much
_CACHE_SIZE = 20_000
_EXACT_ABOVE = 0.3  # scores below this may be reported lower than they are, to save work


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


FILLER_WORDS = _word_set(
    """
    a an the so very really just also please pls plz ok okay today now still yet not no go going
    through hi hello hey some any
    """
)
"""Never matched."""
QUESTION_WORDS = _word_set("how what when where which who why much long")
"""Kept with a small weight beside content words: "where is my parcel" is not "when"."""
STOP_WORDS = FILLER_WORDS | _word_set(
    """
    i me my mine myself we us our ours you your yours it its this that these those they them their he
    she him her his is are was were be been being am do does did doing done have has had having can
    could would should will shall may might must to of for in on at by with from about into onto over
    as and or but if than then there here what how when where which who whom whose why want wanted
    need needs know tell get got like im ive id dont doesnt didnt cant isnt arent wasnt youre hasnt
    havent wont many much long one someone something anything anyone anybody somebody thanks thank thx
    work works until help
    """
)
"""Matched only in a text made of nothing else ("how are you?")."""


def _stem(word: str) -> str:
    """A light suffix stripper, applied alike to questions and phrasings: shipping/shipped -> ship."""
    if len(word) < 4 or not word.isalpha():
        return word
    for suffix, replacement in (("ies", "y"), ("ing", ""), ("ed", ""), ("s", "")):
        if word.endswith(suffix):
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            if suffix == "ed" and word.endswith("eed"):
                return word
            stem = word[: -len(suffix)] + replacement
            if len(stem) < 3:
                return word
            if suffix in ("ing", "ed") and stem[-1] == stem[-2] and stem[-1] not in "lsz":
                stem = stem[:-1]
            return stem
    return word


def words(text: str, limit: int | None = MAX_CHARS) -> list[str]:
    """Normalised words of the start of a text, with "'s" dropped and other apostrophes removed."""
    return [w.removesuffix("'s").replace("'", "") for w in normalise(text[:limit]).split()]


def _stems(ws: list[str]) -> list[tuple[str, bool]]:
    """(stem, is content) for each word that is not filler."""
    stems = ((w, _stem(w)) for w in ws if w and w not in FILLER_WORDS)
    return [(s, w not in STOP_WORDS and s not in STOP_WORDS) for w, s in stems]


def _terms(ws: list[str]) -> list[str]:
    """Content stems plus question words; all stems if there is no content word at all."""
    stems = _stems(ws)
    if not any(content for _, content in stems):
        return [s for s, _ in stems][:_MAX_TERMS]
    return [s for s, content in stems if content or s in QUESTION_WORDS][:_MAX_TERMS]


def terms(text: str) -> list[str]:
    """The terms of a text as the matcher sees them: stemmed content words and question words.

    A text made only of stop words ("how are you?") keeps them all, so it can still match a phrasing.
    Useful to see why a question matches (or not) when writing a knowledge base.
    """
    return _terms(words(text))


@dataclass(frozen=True, slots=True)
class _Query:
    strong: tuple[tuple[float, tuple[tuple[str, float], ...]], ...]  # (weight, similar kb terms)
    weak: tuple[str, ...]  # question words beside content words
    word_sim: dict[str, float]  # knowledge base term -> best similarity to a strong term
    weight: float  # total weight of the query's terms


class KnowledgeIndex:
    """The phrasings of a knowledge base as weighted term sets, with inverted indexes of terms."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.owner: list[int] = []  # phrasing id -> entry index
        self.text: list[str] = []  # phrasing id -> phrasing as written
        self._exact: dict[str, int] = {}  # normalised phrasing -> phrasing id
        self._term_sets: list[frozenset[str]] = []  # phrasing id -> terms
        self._phrasings: list[range] = []  # entry -> its phrasing ids
        self._entry_terms: list[frozenset[str]] = []  # entry -> terms of all its phrasings
        self._answer_terms: list[frozenset[str]] = []  # entry -> terms only its answer has
        postings: dict[str, list[int]] = defaultdict(list)  # term -> entries having it anywhere
        for i, entry in enumerate(kb.entries):
            first = len(self.owner)
            for phrasing in entry.phrasings:
                self.owner.append(i)
                self.text.append(phrasing)
                self._exact.setdefault(" ".join(words(phrasing)), len(self._term_sets))
                self._term_sets.append(frozenset(terms(phrasing)))
            self._phrasings.append(range(first, len(self.owner)))
            phrasing_terms = frozenset().union(*self._term_sets[first:])
            answer_terms = {s for s, content in _stems(words(entry.answer, None)) if content}
            self._entry_terms.append(phrasing_terms)
            self._answer_terms.append(frozenset(answer_terms - phrasing_terms))
            for term in phrasing_terms | answer_terms:
                postings[term].append(i)
        n = len(kb.entries)
        self._postings = dict(postings)
        self._idf = {t: math.log((n + 1) / (len(es) + 1)) + 1.0 for t, es in postings.items()}
        for term in QUESTION_WORDS & self._idf.keys():
            self._idf[term] = _QUESTION_WEIGHT
        self._unknown_idf = math.log(n + 1) + 1.0  # as telling as the rarest word
        self._weight = [sum(self._idf[t] for t in ts) or 1.0 for ts in self._term_sets]
        self._vocabulary = list(self._idf)
        self._similar: dict[str, tuple[tuple[str, float], ...]] = {}

    def best(self, ws: list[str]) -> tuple[int, float] | None:
        """The best phrasing id for these words (from `words`) and its score in [0, 1].

        None when no phrasing shares a content term with them. Entries are scored as the query's
        terms reach them, rarest term first, and the search stops once no entry left unscored
        could beat the best so far, or could reach `_EXACT_ABOVE`: below that, the score is the
        best found (a lower bound), which keeps unrelated questions cheap on a large base.
        """
        pid = self._exact.get(" ".join(ws))
        if pid is not None:
            return pid, 1.0
        query = self._query(_terms(ws))
        if not query.strong:
            return None
        order = sorted(
            query.strong, key=lambda t: sum(len(self._postings.get(w, ())) for w, _ in t[1])
        )
        left = query.weight  # weight of the terms an entry not yet scored may still match
        beta2 = _BETA * _BETA
        best: tuple[int, float] | None = None
        scored: set[int] = set()
        for weight, similar in order:
            bound = left / query.weight
            if (1 + beta2) * bound / (beta2 + bound) <= max(best[1] if best else 0.0, _EXACT_ABOVE):
                break
            left -= weight
            for w, _ in similar:
                for entry in self._postings.get(w, ()):
                    if entry in scored:
                        continue
                    scored.add(entry)
                    found = self._score(entry, query)
                    if found is not None and (best is None or found[1] > best[1]):
                        best = found
        return best

    def ranking(self, ws: list[str]) -> list[tuple[int, float]]:
        """(phrasing id, score) of every entry sharing a content term with the words, best first.

        Scores every such entry, without the shortcuts of `best`: for tools and tests.
        """
        query = self._query(_terms(ws))
        reached = {
            e for _, similar in query.strong for w, _ in similar for e in self._postings.get(w, ())
        }
        scores = [found for e in sorted(reached) if (found := self._score(e, query)) is not None]
        return sorted(scores, key=lambda found: found[1], reverse=True)

    def _query(self, query_terms: list[str]) -> _Query:
        unique = list(dict.fromkeys(query_terms))
        strong = [t for t in unique if t not in QUESTION_WORDS] or unique
        weak = tuple(t for t in unique if t not in strong)
        word_sim: dict[str, float] = {}
        weighted = []
        for term in strong:
            similar = self._similar_terms(term)
            weighted.append(
                (max((self._idf[w] for w, _ in similar), default=self._unknown_idf), similar)
            )
            for w, s in similar:
                word_sim[w] = max(word_sim.get(w, 0.0), s)
        weak = tuple(t for t in weak if t not in word_sim)  # else counted as a misspelling's match
        total = sum(w for w, _ in weighted) + _QUESTION_WEIGHT * len(weak)
        return _Query(tuple(weighted), weak, word_sim, total)

    def _score(self, entry: int, query: _Query) -> tuple[int, float] | None:
        """The F-score of one entry and its best-covered phrasing; None if no phrasing is covered."""
        entry_terms, answer_terms = self._entry_terms[entry], self._answer_terms[entry]
        recall = 0.0
        for weight, similar in query.strong:
            explained = 0.0
            for w, s in similar:
                if w in entry_terms:
                    explained = max(explained, s)
                elif w in answer_terms:
                    explained = max(explained, s * _ANSWER_FACTOR)
            recall += weight * explained
        recall += _QUESTION_WEIGHT * sum(1 for t in query.weak if t in entry_terms)
        best_pid, precision = -1, 0.0
        for pid in self._phrasings[entry]:
            term_set = self._term_sets[pid]
            covered = sum(self._idf[w] * s for w, s in query.word_sim.items() if w in term_set)
            if covered:
                covered += _QUESTION_WEIGHT * sum(1 for t in query.weak if t in term_set)
                if covered / self._weight[pid] > precision:
                    best_pid, precision = pid, covered / self._weight[pid]
        if best_pid < 0:
            return None
        recall /= query.weight
        beta2 = _BETA * _BETA
        return best_pid, min(1.0, (1 + beta2) * precision * recall / (beta2 * precision + recall))

    def _similar_terms(self, term: str) -> tuple[tuple[str, float], ...]:
        """Knowledge base terms close to `term`, with a similarity in (0, 1]; cached per term."""
        found = self._similar.get(term)
        if found is not None:
            return found
        if term in self._idf:
            found = ((term, 1.0),)
        elif not _FUZZY_MIN_LEN <= len(term) <= _FUZZY_MAX_LEN:
            found = ()
        else:
            hits = process.extract(
                term, self._vocabulary, scorer=fuzz.ratio, score_cutoff=_FUZZY_CUTOFF, limit=5
            )
            found = tuple((w, score / 100.0) for w, score, _ in hits)
        if len(self._similar) >= _CACHE_SIZE:
            self._similar.clear()
        self._similar[term] = found
        return found
