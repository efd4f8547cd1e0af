"""Slack text rules. Pure.

Owns:
- `escape_mrkdwn`: `&`, `<` and `>` as entities, so text typed by a customer (`<!channel>`,
  `<@U1>`, `<http://x|y>`) pings nobody and links nothing in Slack;
- `split_escaped` / `clip`: cutting text within Slack's limits without breaking an entity;
- `mrkdwn_to_plain`: what an agent typed in Slack (mentions, links, entities) as plain text for
  the customer;
- `room_base_name` / `room_name`: a room's channel name from the prefix and the customer id,
  within Slack's channel-name rules (lowercase letters, digits, `-`, `_`; at most 80 characters),
  with the `-2`, `-3`, ... suffixes of returning customers.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

__all__ = [
    "MAX_CHANNEL_NAME",
    "clip",
    "escape_mrkdwn",
    "mrkdwn_to_plain",
    "room_base_name",
    "room_name",
    "split_escaped",
]

MAX_CHANNEL_NAME = 80
_ENTITY_TAIL = re.compile(r"&[a-z]{0,3}$")
_INVALID_NAME_CHARS = re.compile(r"[^a-z0-9_-]+")
_SPECIAL = re.compile(r"<([^<>]*)>")


def escape_mrkdwn(text: str) -> str:
    """Slack's three control characters as entities; nothing else changes."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, at: int) -> int:
    """`at`, moved back so the cut does not fall inside an entity such as `&amp;`."""
    tail = _ENTITY_TAIL.search(text, max(0, at - 4), at)
    return tail.start() if tail and tail.start() > 0 else at


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis when cut (entity-safe)."""
    if len(text) <= limit:
        return text
    return text[: _cut(text, max(0, limit - 1))] + "…"


def split_escaped(text: str, limit: int) -> list[str]:
    """Chunks of at most `limit` characters, cut at a newline or space when one is near."""
    if limit < 16:
        raise ValueError("limit too small to split text")
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        at = max(window.rfind("\n"), window.rfind(" "))
        if at < limit * 3 // 4:
            at = _cut(rest, limit)
            chunk, rest = rest[:at], rest[at:]
        else:
            chunk, rest = rest[:at], rest[at + 1 :]
        if chunk.strip():
            chunks.append(chunk)
    if rest.strip() or not chunks:
        chunks.append(rest if rest.strip() else (rest or " "))
    return chunks


def _special(match: re.Match[str]) -> str:
    inner = match[1]
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        return "@" + (label or target[1:])
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!"):
        if label:
            return label
        command = target[1:].split("^", 1)[0]
        return "@" + command if command else ""
    if not target:
        return label
    if target.startswith("mailto:"):
        return label or target.removeprefix("mailto:")
    if label and label != target:
        return f"{label} ({target})"
    return target


def mrkdwn_to_plain(text: str) -> str:
    """What a reader sees of Slack message text: mentions and links as words, entities decoded."""
    plain = _SPECIAL.sub(_special, text)
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def room_base_name(prefix: str, customer_id: str) -> str:
    """`prefix` + the customer id in Slack's channel-name alphabet, at most 80 characters."""
    folded = unicodedata.normalize("NFKD", customer_id.lower())
    ascii_id = "".join(c for c in folded if not unicodedata.combining(c))
    slug = _INVALID_NAME_CHARS.sub("-", ascii_id).strip("-")
    slug = re.sub(r"-{2,}", "-", slug)
    if not slug.strip("_-"):
        slug = "c" + hashlib.sha256(customer_id.encode()).hexdigest()[:10]
    return (prefix + slug)[:MAX_CHANNEL_NAME]


def room_name(base: str, attempt: int) -> str:
    """The name to try for the `attempt`-th room of a customer: base, base-2, base-3, ..."""
    if attempt <= 1:
        return base
    suffix = f"-{attempt}"
    return base[: MAX_CHANNEL_NAME - len(suffix)] + suffix
