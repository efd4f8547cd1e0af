"""The knowledge-base bot: hand-off phrases, greetings, then the best-matching knowledge base entry.

Owns: `KnowledgeBot` (a `Bot`), `Match`, and the matcher behind it. Replying is pure and synchronous:
the knowledge base is indexed once, in the constructor; to reload, build a new bot and swap it in.

How a message is answered, in order:
1. a hand-off phrase as whole words (the same matching as `PhraseBot`) -> `HandOff("asked")`;
2. a message that is only a greeting ("hi", "good morning team!") -> the greeting text, confidence 1;
3. otherwise (a leading greeting is dropped: "hi, where is my parcel?") the entry whose question or
   alternative phrasing matches best -> its answer, with the match score as confidence in [0, 1].

The score is a soft TF-IDF F-measure over content words: stop words are dropped, the rest lightly
stemmed; each query word is paired with knowledge-base words by rapidfuzz's `fuzz.ratio` (typos like
"shiping" still match), weighted by how rare the word is across entries. Recall (how much of the
question a phrasing explains) counts more than precision (how much of the phrasing was asked), and
words the knowledge base has never seen pull the score down: "what's the weather like?" scores 0.
Candidates come from an inverted index, so a reply touches only phrasings that share a word.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from actors.bot import BotAnswer, HandOff, PhraseBot, normalise
from actors.knowledge_base import (
    Entry,
    KnowledgeBase,
    KnowledgeBaseError,
    load_knowledge_base,
    parse_knowledge_base,
)

__all__ = [
    "DEFAULT_GREETINGS",
    "MAX_CHARS",
    "Entry",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "KnowledgeBot",
    "Match",
    "load_knowledge_base",
    "parse_knowledge_base",
    "terms",
]

MAX_CHARS = 1_000
"""Only this many leading characters of a message are matched (hand-off phrases look at all of it)."""
_MAX_TERMS = 64
_FUZZY_CUTOFF = 80.0  # fuzz.ratio below this is no match between two words
_FUZZY_MIN_LEN = 4  # shorter words only match exactly
_BETA = 1.5  # recall weighs more than precision
_CACHE_SIZE = 20_000
_QUESTION_WEIGHT = 0.5  # weight of a question word (content words weigh 1 to ~4)
_ANSWER_FACTOR = 0.6  # a query word found only in an entry's answer counts this much
_UNKNOWN_WEIGHT = 1.0  # weight of a word no entry has, as a fraction of the rarest word's weight

DEFAULT_GREETINGS = (
    "hi", "hello", "hey", "heya", "hiya", "howdy", "yo", "greetings", "hi there", "hello there",
    "good morning", "good afternoon", "good evening", "good day", "morning", "afternoon", "evening",
    "bonjour", "hola", "hallo", "ciao", "salut",
)  # fmt: skip


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_GREETING_FILLERS = _word_set(
    "there all everyone everybody team folks guys again friend friends bot yall you"
)

_FILLER_WORDS = _word_set(
    """
    a an the so much very really just also please pls plz ok okay today now still yet not no go going
    through hi hello hey some any
    """
)  # never matched
_QUESTION_WORDS = _word_set("how what when where which who why")
"""Stop words kept with a small weight beside content words: "where is my parcel" is not "when"."""
_STOP_WORDS = _FILLER_WORDS | _word_set(
    """
    i me my mine myself we us our ours you your yours it its this that these those they them their he
    she him her his is are was were be been being am do does did doing done have has had having can
    could would should will shall may might must to of for in on at by with from about into onto over
    as and or but if than then there here what how when where which who whom whose why want wanted
    need needs know tell get got like im ive id dont doesnt didnt cant isnt arent wasnt youre hasnt
    havent wont many long one someone something anything anyone anybody somebody thanks thank thx
    work works until help
    """
)  # matched only in a text made of nothing else ("how are you?")


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


def _words(text: str, limit: int | None = MAX_CHARS) -> list[str]:
    """Normalised words of the start of a text, with "'s" dropped and other apostrophes removed."""
    return [w.removesuffix("'s").replace("'", "") for w in normalise(text[:limit]).split()]


def _content(words: list[str]) -> list[tuple[str, str, bool]]:
    """(word, stem, is content) for each word that is not filler."""
    stems = ((w, _stem(w)) for w in words if w and w not in _FILLER_WORDS)
    return [(w, s, w not in _STOP_WORDS and s not in _STOP_WORDS) for w, s in stems]


def _terms(words: list[str]) -> list[str]:
    """Content stems plus question words; all stems if there is no content word at all."""
    stems = _content(words)
    if not any(content for _, _, content in stems):
        return [s for _, s, _ in stems][:_MAX_TERMS]
    return [s for _, s, content in stems if content or s in _QUESTION_WORDS][:_MAX_TERMS]


def terms(text: str) -> list[str]:
    """The stemmed words of a text as the matcher sees them: content words and question words.

    A text made only of stop words ("how are you?") keeps them all, so it can still match a phrasing.
    Useful to see why a question matches (or not) when writing a knowledge base.
    """
    return _terms(_words(text))


@dataclass(frozen=True, slots=True)
class Match:
    """The best entry for a text, the phrasing that matched it, and the confidence in [0, 1]."""

    entry: Entry
    phrasing: str
    confidence: float


class _Index:
    """Phrasings of the knowledge base as weighted term sets, with an inverted index of terms."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.owner: list[int] = []  # phrasing id -> entry index
        self.text: list[str] = []  # phrasing id -> original phrasing
        self.exact: dict[str, int] = {}  # normalised phrasing -> phrasing id
        term_sets: list[frozenset[str]] = []
        entry_df: dict[str, int] = defaultdict(int)
        self.answer_postings: dict[str, list[int]] = defaultdict(list)  # term -> entries
        for i, entry in enumerate(kb.entries):
            answer_terms = {s for _, s, content in _content(_words(entry.answer, None)) if content}
            for term in answer_terms:
                self.answer_postings[term].append(i)
            seen: set[str] = set(answer_terms)
            for phrasing in entry.phrasings:
                pid = len(self.owner)
                self.owner.append(i)
                self.text.append(phrasing)
                self.exact.setdefault(" ".join(_words(phrasing)), pid)
                term_set = frozenset(terms(phrasing))
                term_sets.append(term_set)
                seen |= term_set
            for term in seen:
                entry_df[term] += 1
        n = len(kb.entries)
        self.idf = {t: math.log((n + 1) / (df + 1)) + 1.0 for t, df in entry_df.items()}
        for term in _QUESTION_WORDS & self.idf.keys():
            self.idf[term] = _QUESTION_WEIGHT
        self.unknown_idf = (math.log(n + 1) + 1.0) * _UNKNOWN_WEIGHT
        self.postings: dict[str, list[int]] = defaultdict(list)
        for pid, term_set in enumerate(term_sets):
            for term in term_set:
                self.postings[term].append(pid)
        self.weight = [sum(self.idf[t] for t in ts) or 1.0 for ts in term_sets]
        self.vocabulary = list(self.postings.keys() | self.answer_postings.keys())
        self._similar: dict[str, tuple[tuple[str, float], ...]] = {}

    def similar(self, term: str) -> tuple[tuple[str, float], ...]:
        """Knowledge-base terms close to `term`, with a similarity in (0, 1]; cached per term."""
        found = self._similar.get(term)
        if found is not None:
            return found
        if term in self.idf:
            found = ((term, 1.0),)
        elif len(term) < _FUZZY_MIN_LEN or len(term) > 40:
            found = ()
        else:
            hits = process.extract(
                term, self.vocabulary, scorer=fuzz.ratio, score_cutoff=_FUZZY_CUTOFF, limit=5
            )
            found = tuple((word, score / 100.0) for word, score, _ in hits)
        if len(self._similar) >= _CACHE_SIZE:
            self._similar.clear()
        self._similar[term] = found
        return found

    def best(self, query: list[str]) -> tuple[int, float] | None:
        """The best phrasing id for the query terms and its score, or None if nothing is shared.

        Recall is per entry (a question may combine words of several phrasings of one entry),
        precision per phrasing (the best-covered phrasing of the entry counts).
        """
        recall_hits: dict[int, dict[str, float]] = defaultdict(dict)  # entry -> query term -> sim
        precision_hits: dict[int, dict[str, float]] = defaultdict(dict)  # pid -> kb term -> sim
        term_weight: dict[str, float] = {}
        for term in dict.fromkeys(query):
            similar = self.similar(term)
            term_weight[term] = max((self.idf[w] for w, _ in similar), default=self.unknown_idf)
            for word, sim in similar:
                for pid in self.postings.get(word, ()):
                    hits = recall_hits[self.owner[pid]]
                    if hits.get(term, 0.0) < sim:
                        hits[term] = sim
                    if precision_hits[pid].get(word, 0.0) < sim:
                        precision_hits[pid][word] = sim
                for entry in self.answer_postings.get(word, ()):
                    hits = recall_hits[entry]
                    if hits.get(term, 0.0) < sim * _ANSWER_FACTOR:
                        hits[term] = sim * _ANSWER_FACTOR
        query_weight = sum(term_weight.values())
        best_pid: dict[int, tuple[float, int]] = {}  # entry -> (precision, pid)
        for pid, hits in precision_hits.items():
            precision = sum(self.idf[w] * s for w, s in hits.items()) / self.weight[pid]
            entry = self.owner[pid]
            if entry not in best_pid or precision > best_pid[entry][0]:
                best_pid[entry] = (precision, pid)
        best: tuple[int, float] | None = None
        beta2 = _BETA * _BETA
        for entry, hits in recall_hits.items():
            if entry not in best_pid:
                continue  # only the answer has these words: never matched on the answer alone
            recall = sum(term_weight[t] * s for t, s in hits.items()) / query_weight
            precision, pid = best_pid[entry]
            score = (1 + beta2) * precision * recall / (beta2 * precision + recall)
            if best is None or score > best[1]:
                best = (pid, score)
        return best


class KnowledgeBot:
    """A `Bot` answering from a knowledge base; see the module docstring for how it decides."""

    def __init__(
        self,
        kb: KnowledgeBase,
        handoff_phrases: tuple[str, ...],
        *,
        greeting: str = "Hi! I'm the store's assistant. Ask me anything, or ask for a person.",
        fallback: str = "Sorry, I don't know the answer to that.",
    ) -> None:
        self.kb = kb
        self.greeting_text = greeting
        """What the bot says to a greeting (and what a session may say first)."""
        self.fallback_text = fallback
        self._phrases = PhraseBot(handoff_phrases)
        greetings = {tuple(_words(g)) for g in (*DEFAULT_GREETINGS, *kb.greetings)}
        self._greetings = sorted((g for g in greetings if g), key=len, reverse=True)
        self._index = _Index(kb)

    def wants_person(self, text: str) -> bool:
        """Whether the text contains a hand-off phrase as whole words."""
        return self._phrases.wants_person(text)

    def is_greeting(self, text: str) -> bool:
        """Whether the text is only a greeting ("hello", "hi there!", "good morning team")."""
        greeted, rest = self._split_greeting(_words(text))
        return greeted and not rest

    def match(self, text: str) -> Match | None:
        """The best knowledge base entry for the text (a leading greeting ignored), if any word matches."""
        _, rest = self._split_greeting(_words(text))
        return self._match_words(rest)

    def reply(self, text: str) -> BotAnswer | HandOff:
        if self.wants_person(text):
            return HandOff("asked")
        greeted, rest = self._split_greeting(_words(text))
        if greeted and not rest:
            return BotAnswer(self.greeting_text, 1.0, kind="greeting")
        found = self._match_words(rest)
        if found is None:
            return BotAnswer(self.fallback_text, 0.0)
        return BotAnswer(found.entry.answer, found.confidence)

    def _split_greeting(self, words: list[str]) -> tuple[bool, list[str]]:
        """Strip leading greetings (and words like "there" after one); report whether any was found."""
        greeted = False
        i = 0
        while i < len(words):
            for greeting in self._greetings:
                if tuple(words[i : i + len(greeting)]) == greeting:
                    greeted = True
                    i += len(greeting)
                    break
            else:
                if greeted and words[i] in _GREETING_FILLERS:
                    i += 1
                    continue
                break
        return greeted, words[i:]

    def _match_words(self, words: list[str]) -> Match | None:
        if not words:
            return None
        index = self._index
        pid = index.exact.get(" ".join(words))
        if pid is not None:
            score = 1.0
        else:
            found = index.best(_terms(words))
            if found is None:
                return None
            pid, score = found
        entry = self.kb.entries[index.owner[pid]]
        return Match(entry, index.text[pid], min(1.0, max(0.0, score)))
