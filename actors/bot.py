"""The bot interface: what answers the customer while no person has taken over.

Owns: `Bot` (the protocol a real NLU service could implement), its two kinds of reply, and
`PhraseBot`, the smallest bot: hand-off phrases only. The knowledge-base bot lives in
`actors/knowledge_bot.py`. A bot is a pure function of the text: it never blocks and does no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["Bot", "BotAnswer", "HandOff", "PhraseBot", "normalise"]


@dataclass(frozen=True, slots=True)
class BotAnswer:
    """The bot's best answer and its confidence in [0, 1]; the session compares it to the threshold.

    `kind` is "greeting" when the message was only a greeting (the session may treat a greeting as
    the start of a conversation rather than a question), else "answer".
    """

    text: str
    confidence: float
    kind: Literal["answer", "greeting"] = "answer"


@dataclass(frozen=True, slots=True)
class HandOff:
    """The customer asked for a person (or the bot cannot help at all)."""

    reason: Literal["asked", "live_chat_first"] = "asked"


class Bot(Protocol):
    def reply(self, text: str) -> BotAnswer | HandOff:
        """Answer one customer message. Never blocks."""
        ...


_NON_WORD = re.compile(r"[^\w']+")


def normalise(text: str) -> str:
    """Lowercase, punctuation to spaces, runs of spaces folded: the form phrases are matched in."""
    return " ".join(_NON_WORD.sub(" ", text.casefold()).split())


class PhraseBot:
    """Hands off when a configured phrase appears as whole words; otherwise answers with zero confidence."""

    def __init__(self, handoff_phrases: tuple[str, ...], fallback: str = "") -> None:
        phrases = sorted(
            {normalise(p) for p in handoff_phrases if normalise(p)}, key=len, reverse=True
        )
        self._pattern = (
            re.compile(r"(?:^| )(?:" + "|".join(re.escape(p) for p in phrases) + r")(?: |$)")
            if phrases
            else None
        )
        self._fallback = fallback

    def wants_person(self, text: str) -> bool:
        return bool(self._pattern and self._pattern.search(normalise(text)))

    def reply(self, text: str) -> BotAnswer | HandOff:
        if self.wants_person(text):
            return HandOff("asked")
        return BotAnswer(self._fallback, 0.0)
