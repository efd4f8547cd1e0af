"""Slack's rate tiers on: a rush of escalations, all accepted, all get their rooms, none refused.

The emulator answers like Slack's tiers (conversations.create and pins.add are Tier 2, about 20
calls a minute), so rooms for a rush of accepted escalations cannot all open at once: the
daemon's client queues the calls within each tier instead of being refused with 429s, and each
customer is told their agent joined once their room is open. The test measures the queueing
delay (accept -> room open and customer told) on the shared virtual clock and reports it.

The CI run takes 30 escalations; the 200-escalation run is `slow` (`--run-slow`); its figures
are recorded in BENCHMARKS.md ("Slack rate tiers").
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from emulator import AgentSeed
from tests.e2e.e2e_emu import has_buttons
from tests.e2e.e2e_flow import escalate
from tests.e2e.e2e_rig import Stack, running_stack

AGENTS = tuple(AgentSeed(f"agent{i:02d}", f"Agent {i:02d}", "Support") for i in range(20))
RUSH_S = 50.0  # the customers ask within this many seconds
_CUSTOMER = re.compile(r"New chat: (c\d{3})")


@dataclass
class Timeline:
    """Virtual times per customer: escalated, accepted (the click), joined (customer told)."""

    escalated: dict[str, float] = field(default_factory=dict)
    accepted: dict[str, float] = field(default_factory=dict)
    joined: dict[str, float] = field(default_factory=dict)
    vanished: int = 0  # offers whose buttons were gone by the time the agent clicked

    def delays(self) -> list[float]:
        return sorted(self.joined[c] - self.accepted[c] for c in self.joined)


async def accept_everything(stack: Stack, timeline: Timeline) -> None:
    """Every agent clicks Accept on each offer as soon as it shows up (one pass over all the
    agents' DMs per change of the workspace)."""
    agents = {a["id"] for a in stack.agents.values()}
    clicked: set[str] = set()

    async def new_offers() -> list[dict[str, Any]] | None:
        found = []
        for channel in await stack.emu.channels():
            if not channel["is_im"] or not agents & set(channel["members"]):
                continue
            for message in await stack.emu.messages(channel["id"]):
                if has_buttons(message) and message["ts"] not in clicked:
                    agent = next(m for m in channel["members"] if m in agents)
                    found.append(message | {"channel": channel["id"], "agent": agent})
        return found or None

    while True:
        for offer in await stack.emu.until(new_offers):
            clicked.add(offer["ts"])
            customer = _CUSTOMER.search(str(offer["blocks"]))
            assert customer is not None
            at = trio.current_time()
            if await stack.emu.try_click(offer["agent"], offer, "offer_accept"):
                timeline.accepted[customer[1]] = at
            else:
                timeline.vanished += 1


async def rush(stack: Stack, count: int, within_s: float) -> Timeline:
    """`count` customers ask for a person, spread evenly over `within_s` seconds; returns once
    every one of them was told an agent joined."""
    timeline = Timeline()

    async def customer(number: int) -> None:
        await trio.sleep(number * within_s / count)
        name = f"c{number:03d}"
        me = await stack.customer(name=name)
        timeline.escalated[name] = trio.current_time()
        await escalate(me)
        joined = await me.wait_for("agent_joined")
        timeline.joined[name] = trio.current_time()
        assert joined["agent"]["id"] in {a["id"] for a in stack.agents.values()}
        assert me.count("no_agent_available") == 0

    async with trio.open_nursery() as agents:
        agents.start_soon(accept_everything, stack, timeline)
        async with trio.open_nursery() as customers:
            for number in range(count):
                customers.start_soon(customer, number)
        agents.cancel_scope.cancel()
    return timeline


def report(count: int, timeline: Timeline) -> str:
    delays = timeline.delays()
    last_accept = max(timeline.accepted.values()) - min(timeline.escalated.values())
    span = max(timeline.joined.values()) - min(timeline.accepted.values())
    return (
        f"{count} escalations: last accepted {last_accept:.0f} s after the first ask; "
        f"rooms opened over {span:.0f} s; queueing delay (accept -> customer told) "
        f"median {statistics.median(delays):.1f} s, p90 {delays[int(0.9 * (count - 1))]:.1f} s, "
        f"max {delays[-1]:.1f} s"
    )


@pytest.mark.parametrize(
    "count", [30, pytest.param(200, marks=pytest.mark.slow)], ids=["30", "200"]
)
async def test_a_rush_of_accepted_escalations_all_get_rooms_within_the_tiers(
    count: int, tmp_path: Path, e2e_clock: MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    with trio.fail_after(3 * 3600):
        async with running_stack(
            "socket",
            tmp_path,
            rate_limits=True,
            agents=AGENTS,
            routing={"max_chats_per_agent": 10, "offer_timeout_s": 60},
        ) as stack:
            await stack.presence_known()
            before = (await stack.emu.stats())["web_api"]
            timeline = await rush(stack, count, within_s=RUSH_S)
            rooms = await stack.emu.rooms()
            after = (await stack.emu.stats())["web_api"]
            stats = await stack.stats()

    assert len(timeline.joined) == count
    first_ask = min(timeline.escalated.values())
    assert max(timeline.accepted.values()) - first_ask <= 60.0  # all accepted within a minute
    assert len(rooms) == count  # one room per escalation, each with one agent, header pinned
    agents = {a["id"] for a in stack.agents.values()}
    assert all(len(agents & set(r["members"])) == 1 and r["pins"] for r in rooms)
    assert stats["escalations"]["accepted"] == count
    assert stats["escalations"].get("exhausted", 0) == 0
    assert after["ratelimited"] == before["ratelimited"]  # queued, never refused
    assert after["errors"] == before["errors"]
    # conversations.create is Tier 2: after a burst of 5, rooms open at most one every 3 s.
    opened_over = max(timeline.joined.values()) - min(timeline.accepted.values())
    assert opened_over >= (count - 5) * 3.0
    with capsys.disabled():
        print("\n" + report(count, timeline))
