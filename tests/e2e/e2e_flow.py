"""Scenario steps shared by the end-to-end tests: escalate, accept, talk both ways, end.

Owns `AcceptingAgent` (an agent who accepts every offer they get, by clicking in Slack),
`escalate`, `room_of`, `talk` (both sides post tagged lines, interleaved) and `said_in_room` /
`heard_by` (what each side received of those lines, duplicates and order kept, so tests can
assert "once, in order").
"""

from __future__ import annotations

from functools import partial
from typing import Any

import trio

from tests.e2e.e2e_emu import PREFIX, has_buttons, room_lines
from tests.e2e.e2e_rig import Customer, Stack

__all__ = [
    "AcceptingAgent",
    "accepting",
    "end_by_command",
    "escalate",
    "heard_by",
    "room_of",
    "said_in_room",
    "taken_over",
    "talk",
]


class AcceptingAgent:
    """An agent who clicks Accept on every offer DM that shows its buttons."""

    def __init__(self, stack: Stack, name: str) -> None:
        self.stack, self.name = stack, name
        self.id: str = stack.agents[name]["id"]
        self.clicked: list[str] = []  # offer message ts, in click order

    async def run(self) -> None:
        emu = self.stack.emu
        while True:
            new: list[dict[str, Any]] = await emu.until(self._new_offers)
            for offer in new:
                self.clicked.append(offer["ts"])
                await emu.click(self.id, offer, "offer_accept")

    async def _new_offers(self) -> list[dict[str, Any]] | None:
        offers = await self.stack.emu.offers(self.id)
        new = [o for o in offers if has_buttons(o) and o["ts"] not in self.clicked]
        return new or None


async def escalate(customer: Customer, text: str = "I want to talk to a human") -> None:
    searching = customer.count("searching")
    await customer.say(text)
    await customer.wait_for("searching", searching + 1)


async def taken_over(customer: Customer, *, tries: int = 5) -> int:
    """Escalate until an agent joins, asking again after "nobody available" (as a customer
    would); returns how many escalations it took."""
    for attempt in range(1, tries + 1):
        joined, refused = customer.count("agent_joined"), customer.count("no_agent_available")
        await escalate(customer)
        while (customer.count("agent_joined"), customer.count("no_agent_available")) == (
            joined,
            refused,
        ):
            await customer.poll()
        if customer.count("agent_joined") > joined:
            return attempt
    raise AssertionError(f"no agent joined after {tries} escalations")


async def room_of(stack: Stack, customer: Customer) -> dict[str, Any]:
    """The customer's open room, once an agent is in it. (A room Slack created for a request
    the app had given up on, when the app then took the next name, holds no agent.)"""
    agents = {a["id"] for a in stack.agents.values()}

    async def find() -> dict[str, Any] | None:
        base = PREFIX + customer.customer_id
        for room in await stack.emu.rooms():
            mine = room["name"] == base or room["name"].startswith(base + "-")
            if mine and not room["is_archived"] and agents & set(room["members"]):
                return room
        return None

    return await stack.emu.until(find)


async def talk(
    stack: Stack, customer: Customer, agent: str, room_id: str, tag: str, count: int
) -> tuple[list[str], list[str]]:
    """Customer and agent each post `count` lines, interleaved; returns (said, typed)."""
    token = stack.agents[agent]["token"]
    said = [f"{tag} from the customer #{i}" for i in range(count)]
    typed = [f"{tag} from the agent #{i}" for i in range(count)]
    for mine, theirs in zip(said, typed, strict=True):
        await customer.say(mine)
        await stack.emu.say(token, room_id, theirs)
    return said, typed


async def said_in_room(stack: Stack, room_id: str, tag: str, count: int) -> list[str]:
    """The customer's lines tagged `tag` as the room shows them, once `count` arrived."""

    def tagged(messages: list[dict[str, Any]]) -> list[str]:
        return [line for line in room_lines(messages, "(customer)") if line.startswith(tag)]

    messages = await stack.emu.wait_messages(room_id, lambda ms: len(tagged(ms)) >= count)
    return tagged(messages)


async def heard_by(customer: Customer, tag: str, count: int) -> list[str]:
    """The agent lines tagged `tag` the customer received, once `count` arrived."""
    while len(found := [t for t in customer.texts("agent_message") if t.startswith(tag)]) < count:
        await customer.poll()
    return found


async def end_by_command(stack: Stack, agent: str, room_id: str, *, tries: int = 5) -> None:
    """/end-takeover in the room until it is archived: when Slack cannot confirm the agent is a
    member, the app asks them (privately) to try again, and they do."""
    emu, user = stack.emu, stack.agents[agent]["id"]

    async def notes() -> int:
        return sum(bool(m.get("ephemeral")) for m in await emu.messages(room_id, user=user))

    async def outcome(before: int) -> bool | None:
        """True once archived, False once the app answered privately instead."""
        if (await emu.channel(room_id))["is_archived"]:
            return True
        return False if await notes() > before else None

    for _ in range(tries):
        before = await notes()
        await emu.command(user, room_id, "/end-takeover")
        if await emu.until(partial(outcome, before)):
            return
    raise AssertionError(f"/end-takeover did not archive {room_id} in {tries} tries")


async def accepting(stack: Stack, nursery: trio.Nursery, *names: str) -> list[AcceptingAgent]:
    agents = [AcceptingAgent(stack, name) for name in names or tuple(stack.agents)]
    for agent in agents:
        nursery.start_soon(agent.run)
    return agents
