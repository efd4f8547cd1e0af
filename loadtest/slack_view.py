"""What a simulated agent reads in a Slack message: pure helpers over RTM `message` events.

Owns recognising the daemon's messages by Slack's contract (design §4.5), not by the daemon's
code: an offer DM carries an `offer_accept` button, a room header a `takeover_end` button; the
customer is named `LT<number>` by the load tester; a resolved offer says accepted, ignored,
missed or withdrawn.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

__all__ = [
    "ACCEPT",
    "END",
    "IGNORE",
    "action_ids",
    "customer_number",
    "offer_outcome",
    "says_customer_left",
    "texts",
]

ACCEPT, IGNORE, END = "offer_accept", "offer_ignore", "takeover_end"
END_COMMAND = "/end-takeover"

_CUSTOMER = re.compile(r"\bLT(\d+)\b")
_OUTCOMES = ("accepted", "ignored", "missed", "withdrawn")
_LEFT = re.compile(r"customer closed the chat", re.IGNORECASE)


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def action_ids(message: dict[str, Any]) -> set[str]:
    return {
        node["action_id"]
        for node in _walk(message.get("blocks") or [])
        if isinstance(node.get("action_id"), str)
    }


def texts(message: dict[str, Any]) -> str:
    """The message's text and every text inside its blocks, one per line."""
    parts = [message.get("text") or ""]
    for node in _walk(message.get("blocks") or []):
        text = node.get("text")
        if isinstance(text, str):
            parts.append(text)
    return "\n".join(parts)


def customer_number(message: dict[str, Any]) -> int | None:
    """The load tester's customer a message is about (`LT<number>` in its text or blocks)."""
    m = _CUSTOMER.search(texts(message))
    return int(m.group(1)) if m else None


def offer_outcome(message: dict[str, Any]) -> str | None:
    """accepted / ignored / missed / withdrawn, for an offer DM that no longer has buttons."""
    if ACCEPT in action_ids(message):
        return None
    for text in ((message.get("text") or "").lower(), texts(message).lower()):
        for outcome in _OUTCOMES:
            if outcome in text:
                return outcome
    return None


def says_customer_left(message: dict[str, Any]) -> bool:
    return bool(_LEFT.search(message.get("text") or ""))
