"""SlackActor rooms against the real emulator: open, transcript, relay order, close, names."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from actors.ports import CloseRoom, OpenRoom, RelayToRoom, RoomOpened, TranscriptLine
from tests.transport.slack_actor_harness import Harness, line, slack_harness
from transport.slack_blocks import MAX_POST_CHARS
from transport.slack_errors import SlackApiError

DEADLINE = 20
NASTY = "<!channel> <@U1> <http://x|y> & co"
NASTY_ESCAPED = "&lt;!channel&gt; &lt;@U1&gt; &lt;http://x|y&gt; &amp; co"


async def open_room(
    h: Harness,
    customer_id: str = "C42",
    transcript: tuple[TranscriptLine, ...] = (),
    takeover_id: str = "t_1",
    agent: str = "alice",
) -> RoomOpened:
    opened: RoomOpened = await h.ask(
        lambda r: OpenRoom(takeover_id, customer_id, "Carol", h.id(agent), transcript, r)
    )
    return opened


def posted(messages: list[dict[str, Any]]) -> list[tuple[str | None, str]]:
    return [(m.get("username"), m["text"]) for m in messages]


async def test_open_room_creates_the_private_room_with_header_pinned_then_transcript() -> None:
    transcript = (
        line("customer", "hi there"),
        line("bot", "Hello! How can I help?"),
        line("customer", NASTY),
        line("customer", "talk to an agent"),
        line("agent", "earlier agent here"),
    )
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            room = await open_room(h, transcript=transcript)
            assert room.room_name == "swivl_user_c42"
            channel = await h.channel(room.room_id)
            assert channel["name"] == "swivl_user_c42"
            assert channel["is_private"] and not channel["is_archived"]
            assert set(channel["members"]) == {h.id("alice"), h.emulator.credentials.bot_user_id}
            messages = await h.messages(room.room_id)
            header, *rest = messages
            assert channel["pins"] == [header["ts"]] and header.get("pinned")
            ends = [e for b in header["blocks"] if b["type"] == "actions" for e in b["elements"]]
            assert [e["action_id"] for e in ends] == ["takeover_end"]
            assert posted(rest) == [
                ("Carol (customer)", "hi there"),
                ("Bot (bot)", "Hello! How can I help?"),
                ("Carol (customer)", f"{NASTY_ESCAPED}\ntalk to an agent"),
                ("Agent (agent)", "earlier agent here"),
            ]
            assert all(m["user"] == h.emulator.credentials.bot_user_id for m in messages)


async def test_a_returning_customer_gets_the_next_free_name() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            first = await open_room(h, "c42", takeover_id="t_1")
            await h.send(CloseRoom("t_1", first.room_id))
            await h.settle()
            second = await open_room(h, "c42", takeover_id="t_2")
            await h.send(CloseRoom("t_2", second.room_id))
            await h.settle()
            third = await open_room(h, "c42", takeover_id="t_3")
            assert [first.room_name, second.room_name, third.room_name] == [
                "swivl_user_c42",
                "swivl_user_c42-2",
                "swivl_user_c42-3",
            ]
            archived = {c["name"]: c["is_archived"] for c in await h.channels()}
            assert archived["swivl_user_c42"] and archived["swivl_user_c42-2"]
            assert not archived["swivl_user_c42-3"]


async def test_a_name_taken_before_this_process_is_skipped_too() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness(room_prefix="vip-") as h:
            for name in ("vip-c7", "vip-c7-2"):
                await h.api_as("bob", "conversations.create", name=name, is_private="true")
            room = await open_room(h, "c7")
            assert room.room_name == "vip-c7-3"


async def test_close_room_posts_the_note_then_archives() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            room = await open_room(h)
            await h.send(CloseRoom("t_1", room.room_id, "The customer closed the chat."))
            await h.settle()
            channel = await h.channel(room.room_id)
            assert channel["is_archived"]
            assert (await h.messages(room.room_id))[-1]["text"] == "The customer closed the chat."


async def test_relays_keep_each_rooms_order_under_concurrency() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            rooms = [
                await open_room(h, f"c{i}", takeover_id=f"t_{i}", agent=("alice", "bob")[i % 2])
                for i in range(3)
            ]
            # a share of posts is slow, so concurrent posts would overtake each other
            await h.emu(
                "POST",
                "/_emu/faults",
                json={
                    "seed": 3,
                    "delay": {"share": 0.4, "seconds": 0.05, "methods": ["chat.postMessage"]},
                },
            )
            for n in range(15):
                for i, room in enumerate(rooms):
                    await h.send(RelayToRoom(f"t_{i}", room.room_id, line("customer", f"{i}:{n}")))
            await h.settle()
            for i, room in enumerate(rooms):
                texts = [m["text"] for m in (await h.messages(room.room_id))[1:]]
                # lines waiting for the room's turn are merged, a line each, in order
                assert "\n".join(texts).split("\n") == [f"{i}:{n}" for n in range(15)]


async def test_a_long_transcript_is_posted_whole_within_slacks_limits() -> None:
    long_line = " ".join(f"word{i}" for i in range(2_000))  # ~17,000 characters
    transcript = (line("customer", long_line), line("bot", "ok"))
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            room = await open_room(h, transcript=transcript)
            rest = (await h.messages(room.room_id))[1:]
            assert all(len(m["text"]) <= MAX_POST_CHARS for m in rest)
            customer = [m["text"] for m in rest if m["username"] == "Carol (customer)"]
            assert len(customer) > 1 and " ".join(customer) == long_line
            assert rest[-1]["text"] == "ok"


async def test_a_room_whose_agent_cannot_be_invited_fails_and_is_archived() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            with pytest.raises(SlackApiError, match="user_not_found"):
                await h.ask(lambda r: OpenRoom("t_9", "c9", "Carol", "U0NOBODY", (), r))
            (channel,) = [c for c in await h.channels() if c["name"] == "swivl_user_c9"]
            assert channel["is_archived"]
