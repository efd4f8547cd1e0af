"""Customer lines waiting for their room's turn are merged: in order, once, findable after a restart.

Against the real emulator, with the Web API client's real per-channel pace (about one post a
second per room): a burst of lines becomes fewer posts, one line each, in order; the merged
posts carry every line's post id, so the same lines sent again after a restart are found and
not posted twice; lines of another speaker, lines sent again and lines too long for one post
are never merged.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import trio
import trio.testing

from actors.ports import OpenRoom, RelayToRoom, RoomOpened
from tests.transport.slack_actor_harness import Harness, line, slack_harness
from transport.slack_web_post import post_ids_of

DEADLINE = 30


async def open_room(h: Harness) -> RoomOpened:
    opened: RoomOpened = await h.ask(
        lambda r: OpenRoom("t_1", "c42", "Carol", h.id("alice"), (), r)
    )
    return opened


async def relayed(h: Harness, room_id: str) -> list[dict[str, Any]]:
    return (await h.messages(room_id))[1:]  # after the header


async def test_a_burst_becomes_fewer_posts_a_line_each_in_order_with_every_post_id() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            room = await open_room(h)
            said = [line("customer", f"line {n}", at=1.7e9 + n) for n in range(12)]
            for n, text in enumerate(said):
                await h.send(RelayToRoom("t_1", room.room_id, text, f"t_1-{n}"))
            await h.settle()
            posts = await relayed(h, room.room_id)
            assert len(posts) < len(said)
            assert "\n".join(p["text"] for p in posts).split("\n") == [s.text for s in said]
            assert all(p["username"] == "Carol (customer)" for p in posts)
            ids = Counter(pid for p in posts for pid in post_ids_of(p))
            assert ids == Counter(f"t_1-{n}" for n in range(12))
            assert h.actor.relay.merged_lines >= 2

            # after a restart the domain sends its recent lines again: all found, none posted
            for n, text in enumerate(said):
                await h.send(RelayToRoom("t_1", room.room_id, text, f"t_1-{n}", resent=True))
            await h.settle()
            assert await relayed(h, room.room_id) == posts


async def test_other_speakers_resent_lines_and_long_lines_are_not_merged() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            room = await open_room(h)
            sends = [
                RelayToRoom("t_1", room.room_id, line("customer", "one"), "t_1-1"),
                RelayToRoom("t_1", room.room_id, line("bot", "a bot line"), "t_1-2"),
                RelayToRoom("t_1", room.room_id, line("customer", "two"), "t_1-3", resent=True),
                RelayToRoom("t_1", room.room_id, line("customer", "three"), "t_1-4"),
                RelayToRoom("t_1", room.room_id, line("customer", "x" * 7000), "t_1-5"),
                RelayToRoom("t_1", room.room_id, line("customer", "four"), "t_1-6"),
                RelayToRoom("t_1", room.room_id, line("customer", "five"), "t_1-7"),
            ]
            for cmd in sends:
                await h.send(cmd)
            await h.settle()
            posts = await relayed(h, room.room_id)
            texts = [p["text"] for p in posts]
            assert texts[:3] == ["one", "a bot line", "two"]
            assert texts[3] == "three"  # the long line behind it would not fit with it
            assert "".join(texts[4:6]) == "x" * 7000  # split over two posts, alone
            assert "\n".join(texts[6:]) == "four\nfive"  # merged or not, as their turn came


async def test_a_busy_room_holds_one_job_in_the_lanes_however_many_lines_wait() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness(max_commands=4) as h:
            room = await open_room(h)
            await h.emu(
                "POST",
                "/_emu/faults",
                json={"delay": {"share": 1.0, "seconds": 0.5, "methods": ["chat.postMessage"]}},
            )
            said = [line("customer", f"line {n}", at=1.7e9 + n) for n in range(40)]
            for n, text in enumerate(said):
                await h.send(RelayToRoom("t_1", room.room_id, text, f"t_1-{n}"))
            await trio.testing.wait_all_tasks_blocked(0.05)  # the first post is being held
            assert h.actor.statistics().lanes.queued_or_running == 1
            assert h.actor.relay.waiting_lines > 30  # waiting in the relay, not in the lanes
            await h.settle()
            posts = await relayed(h, room.room_id)
            assert "\n".join(p["text"] for p in posts).split("\n") == [s.text for s in said]
            assert len(posts) <= 3 and h.actor.relay.waiting_lines == 0


async def test_a_line_slack_refuses_is_logged_and_the_room_goes_on() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            room = await open_room(h)
            fail = {"share": 1.0, "error": "msg_too_long", "methods": ["chat.postMessage"]}
            await h.emu("POST", "/_emu/faults", json={"fail": fail})
            await h.send(RelayToRoom("t_1", room.room_id, line("customer", "refused"), "t_1-1"))
            await h.settle()
            await h.emu("POST", "/_emu/faults", json={"reset": True})
            await h.send(RelayToRoom("t_1", room.room_id, line("customer", "next"), "t_1-2"))
            await h.settle()
            assert [p["text"] for p in await relayed(h, room.room_id)] == ["next"]
            assert h.actor.relay.failed_posts == 1 and h.actor.relay.waiting_lines == 0
