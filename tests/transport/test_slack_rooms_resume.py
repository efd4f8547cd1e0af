"""Room commands sent again after a restart, against the real emulator: nothing posted twice.

The "earlier run" is a separate `Rooms` (its own post-id prefix, as another process would have)
cut off in the middle of its work; the harness's Slack actor plays the restarted daemon.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import trio

from actors.ports import (
    CloseRoom,
    FetchRoomMessages,
    OpenRoom,
    RelayToRoom,
    RoomMessagePosted,
    RoomOpened,
    TranscriptLine,
)
from tests.transport.slack_actor_harness import Harness, line, slack_harness
from transport.slack_rooms import Rooms
from transport.slack_web_post import post_id_of

DEADLINE = 20
TRANSCRIPT = tuple(
    line("customer" if n % 2 == 0 else "bot", f"line {n}", at=1.7e9 + n) for n in range(20)
)


def ids(messages: list[dict[str, Any]]) -> list[str | None]:
    return [post_id_of(m) for m in messages]


async def open_resumed(
    h: Harness, customer_id: str = "c42", takeover_id: str = "t_1"
) -> RoomOpened:
    opened: RoomOpened = await h.ask(
        lambda r: OpenRoom(
            takeover_id, customer_id, "Carol", h.id("alice"), TRANSCRIPT, r, resume=True
        )
    )
    return opened


async def interrupted_open(h: Harness, posts_before_crash: int) -> str:
    """An earlier run opens the room and dies once `posts_before_crash` messages are in."""
    earlier = Rooms(h.web, prefix="swivl_user_", pause_s=0.05)
    command = OpenRoom("t_1", "c42", "Carol", h.id("alice"), TRANSCRIPT, _NoReply())

    async def enough() -> str | None:
        for channel in await h.channels():
            wanted = channel["name"] == "swivl_user_c42"
            if wanted and len(await h.messages(channel["id"])) >= posts_before_crash:
                return str(channel["id"])
        return None

    async with trio.open_nursery() as nursery:
        nursery.start_soon(earlier.open, command)
        room_id = await h.until(enough)
        nursery.cancel_scope.cancel()  # kill -9, as far as this run is concerned
    return room_id


class _NoReply:
    """`Rooms.open` never answers the command itself (the actor does)."""


async def test_an_interrupted_opening_is_finished_in_the_same_room_without_doubles() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            room_id = await interrupted_open(h, posts_before_crash=3)
            before = await h.messages(room_id)
            assert 3 <= len(before) < 1 + len(TRANSCRIPT)  # cut off halfway
            opened = await open_resumed(h)
            assert (opened.room_id, opened.room_name) == (room_id, "swivl_user_c42")
            messages = await h.messages(room_id)
            assert messages[: len(before)] == before
            expected = ["t_1-h", *(f"t_1-t{i}" for i in range(len(messages) - 1))]
            assert ids(messages) == expected
            assert [m["text"] for m in messages[1:]] == [ln.text for ln in TRANSCRIPT]
            channel = await h.channel(room_id)
            assert channel["pins"] == [messages[0]["ts"]]
            assert not any(c["name"].startswith("swivl_user_c42-") for c in await h.channels())


async def test_a_room_created_but_never_written_to_is_used() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            created = await h.web.call(
                "conversations.create", name="swivl_user_c42", is_private=True
            )
            opened = await open_resumed(h)
            assert opened.room_id == created["channel"]["id"]
            assert ids(await h.messages(opened.room_id))[0] == "t_1-h"
            assert h.id("alice") in (await h.channel(opened.room_id))["members"]


async def test_resuming_an_opening_that_never_reached_slack_opens_a_room() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            first: RoomOpened = await h.ask(
                lambda r: OpenRoom("t_0", "c42", "Carol", h.id("alice"), (), r)
            )
            opened = await open_resumed(h, takeover_id="t_1")  # t_0's room is not t_1's
            assert opened.room_id != first.room_id and opened.room_name == "swivl_user_c42-2"
            assert Counter(ids(await h.messages(opened.room_id)))["t_1-h"] == 1


async def test_relays_and_close_notes_sent_again_are_posted_once() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            room: RoomOpened = await h.ask(
                lambda r: OpenRoom("t_1", "c42", "Carol", h.id("alice"), (), r)
            )
            said: TranscriptLine = line("customer", "my parcel", at=1.7e9)
            long_line = line("customer", "x" * 7000, at=1.7e9)
            await h.send(RelayToRoom("t_1", room.room_id, said, "t_1-5"))
            await h.send(RelayToRoom("t_1", room.room_id, long_line, "t_1-6"))
            await h.settle()
            # after a restart: the same lines again, and one that never made it
            await h.send(RelayToRoom("t_1", room.room_id, said, "t_1-5", resent=True))
            await h.send(RelayToRoom("t_1", room.room_id, long_line, "t_1-6", resent=True))
            later = line("customer", "hello?", at=1.7e9 + 1)
            await h.send(RelayToRoom("t_1", room.room_id, later, "t_1-7", resent=True))
            await h.send(CloseRoom("t_1", room.room_id, "The customer closed the chat."))
            await h.send(CloseRoom("t_1", room.room_id, "The customer closed the chat.", True))
            await h.settle()
            posted = ids(await h.messages(room.room_id))
            assert posted[1:] == ["t_1-5", "t_1-6", "t_1-6.1", "t_1-7", "t_1-note"]
            assert (await h.channel(room.room_id))["is_archived"]


async def test_room_messages_read_back_match_what_live_delivery_gave() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            room: RoomOpened = await h.ask(
                lambda r: OpenRoom("t_1", "c42", "Carol", h.id("alice"), TRANSCRIPT[:3], r)
            )
            await h.send(RelayToRoom("t_1", room.room_id, line("customer", "mine"), "t_1-9"))
            await h.settle()
            said = []
            for text in ("Hi Carol, <@U1> &amp; co", "second", "third"):
                await h.api_as("alice", "chat.postMessage", channel=room.room_id, text=text)
                said.append(await h.domain.next_fact())
            read: tuple[RoomMessagePosted, ...] = await h.ask(
                lambda r: FetchRoomMessages(room.room_id, 0.0, r)
            )
            assert read == tuple(said)  # people only, oldest first, the same ids and text
            assert read[0].text == "Hi Carol, @U1 & co"
            later: tuple[RoomMessagePosted, ...] = await h.ask(
                lambda r: FetchRoomMessages(
                    room.room_id, float(said[1].message_id.split(":")[1]), r
                )
            )
            assert later == tuple(said[1:])
