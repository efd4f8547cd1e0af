"""Restart helpers for the restore tests: facts -> journal records -> a domain rebuilt from them.

A crash is simulated exactly: the journal of a process killed at some moment holds the facts it
had recorded by then, so a test copies `sink.facts` at that moment and restarts from the copy.
The records go through the real framing (msgpack, CRC) and the fact codec, and a snapshot
through the snapshot codec and msgpack, as they would on disk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import msgpack
import trio

from actors.domain import Domain
from actors.durable_state import DurableState
from actors.fact_codec import encode_fact
from actors.facts import Fact, MemoryFactSink
from actors.journal import JournalEntry
from actors.journal_framing import encode_record, scan
from actors.ports import PresenceChanged, RoomMessagePosted
from actors.restore import rebuild
from actors.settings import BotSettings, RoutingSettings
from actors.state_codec import encode_state
from tests.actors.harness import AGENTS, FakeSlack, Harness, ScriptedBot, wall_clock


def journal_entries(facts: Sequence[Fact], first_lsn: int = 1) -> list[JournalEntry]:
    """The facts as the journal replays them: framed, scanned and decoded back."""
    raw = b"".join(
        encode_record(lsn, encode_fact(fact)) for lsn, fact in enumerate(facts, first_lsn)
    )
    frames = scan(raw).frames
    assert len(frames) == len(facts)
    return [
        JournalEntry(f.body["lsn"], {k: v for k, v in f.body.items() if k not in ("v", "lsn")})
        for f in frames
    ]


def through_msgpack(state: DurableState) -> dict[str, object]:
    """A snapshot of `state` as it reads back from disk."""
    decoded = msgpack.unpackb(msgpack.packb(encode_state(state), use_bin_type=True), raw=False)
    assert isinstance(decoded, dict)
    return decoded


def replay(facts: Sequence[Fact], snapshot_after: int | None = None) -> DurableState:
    """Rebuild from scratch, or from a snapshot taken after the first `snapshot_after` facts."""
    if snapshot_after is None:
        return rebuild(None, journal_entries(facts))
    head = rebuild(None, journal_entries(facts[:snapshot_after]))
    rest = journal_entries(facts[snapshot_after:], snapshot_after + 1)
    return rebuild(through_msgpack(head), rest)


def restored_domain(
    state: DurableState,
    slack: FakeSlack,
    sink: MemoryFactSink,
    routing: RoutingSettings,
    *,
    presence_grace_s: float = 30.0,
) -> Domain:
    return Domain(
        routing=routing,
        bot_settings=BotSettings(),
        bot=ScriptedBot(),
        slack=slack.send,
        sink=sink,
        agents=routing.agents,
        wall_clock=wall_clock,
        recovered=state,
        presence_grace_s=presence_grace_s,
    )


@asynccontextmanager
async def restarted(
    facts: Sequence[Fact],
    *,
    agents: tuple[str, ...] = AGENTS,
    present: tuple[str, ...] | None = None,
    snapshot_after: int | None = None,
    offer_timeout_s: float = 45.0,
    max_tries: int = 3,
    max_chats_per_agent: int = 3,
    hold_rooms: bool = False,
    room_messages: dict[str, list[RoomMessagePosted]] | None = None,
) -> AsyncIterator[Harness]:
    """A domain restarted from `facts` with a fresh fake Slack; `present` agents (default: all)
    report active presence once it runs (None of them when `present` is empty)."""
    routing = RoutingSettings(
        agents=agents,
        offer_timeout_s=offer_timeout_s,
        max_tries=max_tries,
        max_chats_per_agent=max_chats_per_agent,
    )
    slack = FakeSlack()
    slack.hold_rooms = hold_rooms
    slack.room_messages = room_messages or {}
    sink = MemoryFactSink()
    domain = restored_domain(replay(facts, snapshot_after), slack, sink, routing)
    async with trio.open_nursery() as nursery:
        await nursery.start(slack.run)
        await nursery.start(domain.run)
        for agent_id in agents if present is None else present:
            await domain.deliver(PresenceChanged(agent_id, True))
        harness = Harness(domain, slack, sink, routing, BotSettings())
        await harness.settle()
        yield harness
        nursery.cancel_scope.cancel()
