"""The knowledge-base bot: hand-off phrases, greetings, then the best-matching knowledge base entry.

Owns: `KnowledgeBot` (a `Bot`) and `Match`. Replying is pure and synchronous: the knowledge base is
indexed once, in the constructor (`actors/kb_matcher.py`); to reload, build a new bot and swap it in.

How a message is answered, in order:
1. a hand-off phrase as whole words (the same matching as `PhraseBot`, over the whole message)
   -> `HandOff("asked")`;
2. a message that is only a greeting ("hi", "good morning team!") -> `greeting_text` with
   confidence 1 and `kind="greeting"`;
3. otherwise (a leading greeting dropped: "hi, where is my parcel?") the entry whose question or
   alternative phrasing matches best -> its answer, with the match score as confidence in [0, 1];
   nothing in common with any entry -> `fallback_text` with confidence 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.bot import BotAnswer, HandOff, PhraseBot
from actors.kb_matcher import MAX_CHARS, KnowledgeIndex, terms, words
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

DEFAULT_GREETINGS = (
    "hi", "hello", "hey", "heya", "hiya", "howdy", "yo", "greetings", "hi there", "hello there",
    "good morning", "good afternoon", "good evening", "good day", "morning", "afternoon", "evening",
    "bonjour", "hola", "hallo", "ciao", "salut",
)  # fmt: skip
"""Greetings every bot knows; a knowledge base's `greetings` list adds to them."""
_GREETING_FILLERS = frozenset(
    ["there", "all", "everyone", "everybody", "team", "folks", "guys", "again", "friend", "you"]
)


@dataclass(frozen=True, slots=True)
class Match:
    """The best entry for a text, the phrasing that matched it, and the confidence in [0, 1]."""

    entry: Entry
    phrasing: str
    confidence: float


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
        """What the bot answers to a greeting (the session may also open a conversation with it)."""
        self.fallback_text = fallback
        """What the bot answers, with confidence 0, when no entry has a word in common."""
        self._phrases = PhraseBot(handoff_phrases)
        greetings = {tuple(words(g)) for g in (*DEFAULT_GREETINGS, *kb.greetings)}
        self._greetings = sorted((g for g in greetings if g), key=len, reverse=True)
        self._index = KnowledgeIndex(kb)

    def wants_person(self, text: str) -> bool:
        """Whether the text contains a hand-off phrase as whole words."""
        return self._phrases.wants_person(text)

    def is_greeting(self, text: str) -> bool:
        """Whether the text is only a greeting ("hello", "hi there!", "good morning team")."""
        greeted, rest = self._split_greeting(words(text))
        return greeted and not rest

    def match(self, text: str) -> Match | None:
        """The best entry for the text (a leading greeting ignored); None if no word is shared."""
        _, rest = self._split_greeting(words(text))
        return self._match(rest)

    def reply(self, text: str) -> BotAnswer | HandOff:
        if self.wants_person(text):
            return HandOff("asked")
        greeted, rest = self._split_greeting(words(text))
        if greeted and not rest:
            return BotAnswer(self.greeting_text, 1.0, kind="greeting")
        found = self._match(rest)
        if found is None:
            return BotAnswer(self.fallback_text, 0.0)
        return BotAnswer(found.entry.answer, found.confidence)

    def _split_greeting(self, ws: list[str]) -> tuple[bool, list[str]]:
        """Strip leading greetings (and words like "there" after one); report whether any was found."""
        greeted = False
        i = 0
        while i < len(ws):
            for greeting in self._greetings:
                if tuple(ws[i : i + len(greeting)]) == greeting:
                    greeted = True
                    i += len(greeting)
                    break
            else:
                if greeted and ws[i] in _GREETING_FILLERS:
                    i += 1
                    continue
                break
        return greeted, ws[i:]

    def _match(self, ws: list[str]) -> Match | None:
        found = self._index.best(ws) if ws else None
        if found is None:
            return None
        pid, score = found
        entry = self.kb.entries[self._index.owner[pid]]
        return Match(entry, self._index.text[pid], min(1.0, max(0.0, score)))
