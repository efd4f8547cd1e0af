"""Which message went where: tokens in every relayed text, and the final lost/duplicated audit.

Owns the message tokens (`LTc12m3`: customer 12's third message; `LTa12m3`: the agent's third
message to customer 12), the `Conversation` record each simulated customer and agent fills in, and
`audit`, a pure function over what Slack and the customer API hold at the end of the run.

The audit's rules (exact, no timing guesses):
- a customer message is expected in the room when its `seq` (from the 202) falls inside a
  takeover, i.e. after an `agent_joined` event and before the next `agent_left` or `closed`;
  it must appear exactly once in that takeover's room (relayed, or in the transcript);
- an agent message is expected by the customer when chat.postMessage answered ok; it must appear
  exactly once among the customer's `agent_message` events;
- any token seen more than once in one room, or among one customer's agent messages, is
  duplicated, expected or not.
Latencies come from the live streams; this audit reads the authoritative stores afterwards.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "TOKEN",
    "Audit",
    "Conversation",
    "agent_token",
    "audit",
    "customer_token",
    "takeover_spans",
    "tokens_in",
]

TOKEN = re.compile(r"\bLT([ca])(\d+)m(\d+)\b")


def customer_token(customer: int, n: int) -> str:
    return f"LTc{customer}m{n}"


def agent_token(customer: int, n: int) -> str:
    return f"LTa{customer}m{n}"


def tokens_in(text: str) -> list[str]:
    return [m.group(0) for m in TOKEN.finditer(text)]


@dataclass(slots=True)
class Conversation:
    """One simulated customer, as both sides saw it. Times are run seconds."""

    number: int
    customer_id: str
    session_id: str = ""
    token: str = ""
    # customer messages acknowledged with 202: token -> (seq, sent at)
    sent: dict[str, tuple[int, float]] = field(default_factory=dict)
    # agent messages chat.postMessage accepted: token -> sent at
    agent_sent: dict[str, float] = field(default_factory=dict)
    rooms: list[str] = field(default_factory=list)
    escalated_at: float | None = None
    offered: bool = False
    outcome: str | None = None  # agent_joined | no_agent_available | left_waiting | none
    closed_mid_takeover: bool = False


@dataclass(frozen=True, slots=True)
class Audit:
    expected_in_rooms: int
    found_in_rooms: int
    lost_to_rooms: tuple[str, ...]
    duplicated_in_rooms: tuple[str, ...]
    expected_by_customers: int
    found_by_customers: int
    lost_to_customers: tuple[str, ...]
    duplicated_to_customers: tuple[str, ...]

    @property
    def lost(self) -> int:
        return len(self.lost_to_rooms) + len(self.lost_to_customers)

    @property
    def duplicated(self) -> int:
        return len(self.duplicated_in_rooms) + len(self.duplicated_to_customers)

    def to_json(self) -> dict[str, Any]:
        return {
            "customer_to_room": {
                "expected": self.expected_in_rooms,
                "found": self.found_in_rooms,
                "lost": list(self.lost_to_rooms),
                "duplicated": list(self.duplicated_in_rooms),
            },
            "agent_to_customer": {
                "expected": self.expected_by_customers,
                "found": self.found_by_customers,
                "lost": list(self.lost_to_customers),
                "duplicated": list(self.duplicated_to_customers),
            },
            "lost": self.lost,
            "duplicated": self.duplicated,
        }


def takeover_spans(events: Sequence[Mapping[str, Any]]) -> list[tuple[int, int]]:
    """(joined seq, end seq) of each takeover; an open one ends at infinity (a huge seq)."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for event in events:
        kind, seq = event.get("type"), event.get("seq")
        if not isinstance(seq, int):
            continue
        if kind == "agent_joined" and start is None:
            start = seq
        elif kind in ("agent_left", "closed") and start is not None:
            spans.append((start, seq))
            start = None
    if start is not None:
        spans.append((start, 1 << 62))
    return spans


def audit(
    conversations: Iterable[Conversation],
    events: Mapping[str, Sequence[Mapping[str, Any]]],
    room_texts: Mapping[str, Sequence[str]],
) -> Audit:
    """`events`: session id -> the session's whole event list; `room_texts`: room id -> the text
    of every message in it (archived rooms included)."""
    expected_rooms = found_rooms = expected_customers = found_customers = 0
    lost_rooms: list[str] = []
    dup_rooms: list[str] = []
    lost_customers: list[str] = []
    dup_customers: list[str] = []
    for conv in conversations:
        session_events = events.get(conv.session_id, ())
        spans = takeover_spans(session_events)
        in_rooms: Counter[str] = Counter()
        for room in conv.rooms:
            per_room = Counter(t for text in room_texts.get(room, ()) for t in tokens_in(text))
            dup_rooms += [t for t, n in per_room.items() if n > 1 and t.startswith("LTc")]
            in_rooms.update(per_room)
        for token, (seq, _) in conv.sent.items():
            if any(start < seq < end for start, end in spans):
                expected_rooms += 1
                if in_rooms[token]:
                    found_rooms += 1
                else:
                    lost_rooms.append(token)
        delivered = Counter(
            t
            for e in session_events
            if e.get("type") == "agent_message" and isinstance(e.get("text"), str)
            for t in tokens_in(e["text"])
        )
        dup_customers += [t for t, n in delivered.items() if n > 1]
        for token in conv.agent_sent:
            expected_customers += 1
            if delivered[token]:
                found_customers += 1
            else:
                lost_customers.append(token)
    return Audit(
        expected_rooms,
        found_rooms,
        tuple(sorted(lost_rooms)),
        tuple(sorted(dup_rooms)),
        expected_customers,
        found_customers,
        tuple(sorted(lost_customers)),
        tuple(sorted(dup_customers)),
    )
