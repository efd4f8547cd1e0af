"""The customer API's wire format: request bodies and query strings in, event JSON out.

Owns: decoding what a client sends into typed values (or an `ApiError` naming what is wrong) and
encoding the domain's customer events as the JSON objects of the contract. Pure: no I/O.

Decoding rules (documented in docs/customer-api.md):
- bodies are UTF-8 JSON objects; unknown fields are ignored, so old servers accept new clients;
- optional fields may be absent or null; strings are trimmed and an empty one counts as absent;
- a message text that is blank is 400, longer than the limit is 413; texts that cannot be stored
  as UTF-8 (lone surrogates from `\\ud800` escapes) are 400.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from actors.ports import TranscriptLine
from actors.stats import DomainStats
from transport.chat_errors import Malformed, TooLarge

__all__ = [
    "MAX_WAIT_S",
    "EventLike",
    "OpenSessionRequest",
    "decode_message_text",
    "decode_open_session",
    "earlier_lines",
    "encode_event",
    "encode_stats",
    "parse_after",
    "parse_json_object",
    "parse_wait",
]

MAX_CUSTOMER_ID_CHARS = 64
MAX_NAME_CHARS = 200
MAX_EMAIL_CHARS = 254
MAX_WAIT_S = 30.0


@dataclass(frozen=True, slots=True)
class OpenSessionRequest:
    customer_id: str | None
    name: str | None
    email: str | None


class AgentLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def display_name(self) -> str: ...
    @property
    def real_name(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def avatar_url(self) -> str: ...


class EventLike(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def text(self) -> str | None: ...
    @property
    def agent(self) -> AgentLike | None: ...
    @property
    def at(self) -> float: ...


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise Malformed("malformed_json", "the body is not UTF-8") from None
    except (ValueError, RecursionError):
        raise Malformed("malformed_json", "the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise Malformed("malformed_json", "the body must be a JSON object")
    return value


def _storable(text: str, field: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Malformed(
            "invalid_field", f"{field} holds characters that are not valid Unicode"
        ) from None
    return text


def _optional_str(obj: Mapping[str, Any], field: str, max_chars: int) -> str | None:
    value = obj.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Malformed("invalid_field", f"{field} must be a string")
    value = _storable(value.strip(), field)
    if len(value) > max_chars:
        raise Malformed("invalid_field", f"{field} is longer than {max_chars} characters")
    return value or None


def decode_open_session(obj: Mapping[str, Any]) -> OpenSessionRequest:
    """Types and lengths only; the domain checks what a customer id may hold (400 otherwise)."""
    return OpenSessionRequest(
        customer_id=_optional_str(obj, "customer_id", MAX_CUSTOMER_ID_CHARS),
        name=_optional_str(obj, "name", MAX_NAME_CHARS),
        email=_optional_str(obj, "email", MAX_EMAIL_CHARS),
    )


def decode_message_text(obj: Mapping[str, Any], max_chars: int) -> str:
    if "text" not in obj:
        raise Malformed("missing_text", 'the body must have a "text" field')
    text = obj["text"]
    if not isinstance(text, str):
        raise Malformed("invalid_field", "text must be a string")
    if len(text) > max_chars:
        raise TooLarge("text_too_long", f"text is longer than {max_chars} characters")
    if not text.strip():
        raise Malformed("empty_text", "text is empty")
    return _storable(text, "text")


def parse_after(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise Malformed("invalid_field", "after must be a sequence number (a whole number >= 0)")
    return int(raw)


def parse_wait(raw: str | None) -> float:
    """Seconds to wait for events; more than `MAX_WAIT_S` is cut to it."""
    if raw is None or raw == "":
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        raise Malformed("invalid_field", "wait must be a number of seconds") from None
    if not math.isfinite(wait) and wait != math.inf:
        raise Malformed("invalid_field", "wait must be a number of seconds")
    if wait < 0:
        raise Malformed("invalid_field", "wait must not be negative")
    return min(wait, MAX_WAIT_S)


def encode_event(event: EventLike) -> dict[str, Any]:
    out: dict[str, Any] = {"seq": event.seq, "type": event.type}
    if event.text is not None:
        out["text"] = event.text
    agent = event.agent
    if agent is not None:
        out["agent"] = {
            "id": agent.id,
            "display_name": agent.display_name,
            "real_name": agent.real_name,
            "title": agent.title,
            "avatar_url": agent.avatar_url,
        }
    out["at"] = event.at
    return out


def encode_stats(stats: DomainStats) -> dict[str, Any]:
    """`GET /api/stats`: agents' stats, escalation counts by outcome (design §4.3)."""
    return {
        "agents": [
            {f.name: getattr(agent, f.name) for f in dataclasses.fields(agent)}
            for agent in stats.agents
        ],
        "escalations": dict(stats.by_outcome),
        "sessions_open": stats.sessions_open,
    }


# Event types that put one line in the customer's transcript, in the same step as the event.
_LINE_EVENTS = frozenset(
    {
        "customer_message",
        "bot_message",
        "searching",
        "no_agent_available",
        "agent_message",
        "agent_left",
    }
)
MAX_HISTORY_LINES = 200


def earlier_lines(
    transcript: Sequence[TranscriptLine], events: Sequence[EventLike]
) -> list[dict[str, Any]]:
    """The customer's lines from their earlier sessions: the transcript minus this session's.

    The domain keeps one transcript per customer across sessions and appends one line for each
    text event of the session, in the same step as the event; so the lines of this session are
    the last `n` of the transcript, `n` being its number of such events. (Two sessions of one
    customer talking at the same time would interleave; the history is then approximate.)
    """
    own = sum(1 for event in events if event.type in _LINE_EVENTS)
    earlier = transcript[: max(0, len(transcript) - own)][-MAX_HISTORY_LINES:]
    return [
        {"speaker": line.speaker, "name": line.author_name, "text": line.text, "at": line.at}
        for line in earlier
    ]
