"""Stats where agents and managers look, through the whole daemon and the Slack emulator:
App Home tabs (views.publish), `/takeover-stats`, auto-away with its DM and "I'm available".

Both run in the test's trio run under the autojump clock, so the Home refresh period, the offer
deadline and the presence polls run on virtual time; every wait is on the emulator's change feed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from trio.testing import MockClock

from tests.e2e.ops_stack import OpsStack, ops_stack

REFRESH_S = 10.0  # SlackHome's default refresh period


def _text(view_or_message: dict[str, Any]) -> str:
    return str(view_or_message.get("blocks", "")) + str(view_or_message.get("text", ""))


async def _all_available(stack: OpsStack) -> None:
    async def find() -> bool | None:
        agents = (await stack.http.get(stack.chat + "/api/stats")).json()["agents"]
        return True if all(a["available"] for a in agents) else None

    await stack.until(find)


async def _home_showing(stack: OpsStack, user_id: str, *needles: str) -> dict[str, Any]:
    async def find() -> dict[str, Any] | None:
        home = await stack.home(user_id)
        view = home["view"]
        return home if view is not None and all(n in _text(view) for n in needles) else None

    return await stack.until(find)


async def test_each_agent_home_shows_their_stats_and_follows_changes(
    tmp_path: Path, e2e_clock: MockClock
) -> None:
    async with ops_stack("emulator", tmp_path) as stack:
        await _all_available(stack)
        alice, bob = stack.agents["alice"]["id"], stack.agents["bob"]["id"]
        for agent in (alice, bob):
            home = await _home_showing(stack, agent, "Available", "Offered")
            assert home["view"]["type"] == "home"

        await stack.session("I want a human")
        offered: dict[str, Any] | None = None

        async def find_offer() -> tuple[str, dict[str, Any]] | None:
            for agent in (alice, bob):
                dm = await stack.dm(agent)
                for m in await stack.messages(dm) if dm else []:
                    if "offer_ignore" in str(m.get("blocks")):
                        return agent, m | {"channel": dm}
            return None

        agent, offered = await stack.until(find_offer)
        clicked = await stack.emu_post(
            "/_emu/click",
            {
                "user": agent,
                "channel": offered["channel"],
                "ts": offered["ts"],
                "action_id": "offer_ignore",
            },
        )
        assert clicked["ok"]
        ignored_at = trio.current_time()
        await _home_showing(stack, agent, "*Ignored*\\n1")
        assert trio.current_time() - ignored_at <= REFRESH_S  # debounced, within one period
        home = await stack.home(agent)
        before = home["published"]
        await stack.emu_post("/_emu/home/open", {"user": agent})  # unchanged: not republished
        await trio.testing.wait_all_tasks_blocked()
        assert (await stack.home(agent))["published"] == before

        manager = await stack.emu_post("/_emu/users", {"name": "maya", "real_name": "Maya"})
        await stack.emu_post("/_emu/home/open", {"user": manager["id"]})
        home = await _home_showing(stack, manager["id"], "not in takeover's agent pool")
        assert home["published"] == 1


async def test_takeover_stats_answers_the_team_table_privately(
    tmp_path: Path, e2e_clock: MockClock
) -> None:
    async with ops_stack("emulator", tmp_path) as stack:
        await _all_available(stack)
        alice = stack.agents["alice"]["id"]
        general = next(
            c["id"]
            for c in (await stack.emu_get("/_emu/channels"))["channels"]
            if c["name"] == "general"
        )
        await stack.emu_post(
            "/_emu/command", {"user": alice, "channel": general, "command": "/takeover-stats"}
        )

        async def ephemeral() -> dict[str, Any] | None:
            mine = [m for m in await stack.messages(general, user=alice) if m.get("ephemeral")]
            return mine[0] if mine else None

        table = await stack.until(ephemeral)
        assert table["text"] == "Team: 2 of 2 agents available now."
        rows = str(table["blocks"][1]["text"]["text"]).splitlines()
        assert rows[1].split()[:3] == ["Agent", "Status", "Load"]
        assert [row.split()[:2] for row in rows[2:4]] == [
            ["alice", "available"],
            ["bob", "available"],
        ]
        assert await stack.messages(general) == []  # only alice saw it: not in the channel


async def test_an_agent_set_away_after_misses_is_told_and_comes_back_with_the_button(
    tmp_path: Path, e2e_clock: MockClock
) -> None:
    routing = {"auto_away_after_misses": 1, "offer_timeout_s": 30}
    async with ops_stack("emulator", tmp_path, routing=routing) as stack:
        await _all_available(stack)
        await stack.session("I want a human")

        async def away_agent() -> tuple[str, dict[str, Any]] | None:
            for info in stack.agents.values():
                dm = await stack.dm(info["id"])
                for m in await stack.messages(dm) if dm else []:
                    if "missed 1 chat offers in a row" in m["text"]:
                        return info["id"], m
            return None

        started = trio.current_time()
        agent, notice = await stack.until(away_agent)
        assert trio.current_time() - started >= 30  # only once the offer's deadline passed
        assert "agent_available" in str(notice["blocks"])
        assert (await _stats_of(stack, agent))["available"] is False
        home = await _home_showing(stack, agent, "Away", "agent_available")
        assert home["view"]["type"] == "home"

        await stack.emu_post("/_emu/home/click", {"user": agent, "action_id": "agent_available"})

        async def back() -> bool | None:
            return True if (await _stats_of(stack, agent))["available"] else None

        await stack.until(back)
        dm = await stack.dm(agent)
        assert dm is not None
        assert any("available for chats again" in m["text"] for m in await stack.messages(dm))
        await _home_showing(stack, agent, "Available")


async def _stats_of(stack: OpsStack, agent_id: str) -> dict[str, Any]:
    agents = (await stack.http.get(stack.chat + "/api/stats")).json()["agents"]
    return dict(next(a for a in agents if a["id"] == agent_id))
