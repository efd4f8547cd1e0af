"""Customer lines into their rooms, merged while they wait for the channel's turn.

Owns `RoomRelay`. Slack lets an app post about once a second per channel (chat.postMessage's
per-channel pace in `transport.slack_rate`). A customer who types faster than that, or a burst
after a stall, would build a queue that a steady one post a second never drains. So the lines
waiting for a room when its turn comes are posted together: one message of several lines in
the speaker's name (at most `MAX_POST_CHARS`), as a person typing fast would read in Slack.
The merged message's metadata carries every line's post id (`event_payload.merged`), so a line
sent again after a restart finds it (`transport.slack_web_post.post_ids_of`) and is not posted
twice.

The Slack actor calls `queue(cmd)` as each `RelayToRoom` arrives, in order; when the room has
no job yet it submits `drain(room_id)` to the room's lane. The job waits for the channel's turn,
posts the lines waiting (merged), and goes on until none is left, so a room holds one job in
the lanes however many lines wait, and a busy room never fills the lanes for everyone else.
Lines sent again after a restart (`resent`) and lines too long for one post are never merged:
they go alone through `Rooms.relay`, as before.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace

import structlog
import trio

from actors.ports import RelayToRoom
from transport.slack_blocks import Post, merged_post
from transport.slack_rooms import Rooms
from transport.slack_web import SlackWebClient
from transport.slack_web_post import EVENT_TYPE

__all__ = ["RoomRelay"]

_log = structlog.get_logger("transport.slack_relay")


class RoomRelay:
    """Relays customer lines to rooms in order, merging those that wait for the same turn."""

    def __init__(
        self,
        web: SlackWebClient,
        rooms: Rooms,
        avatars: Mapping[str, str],
        *,
        on_posted: Callable[[RelayToRoom], None] = lambda cmd: None,
    ) -> None:
        self._web = web
        self._rooms = rooms
        self._avatars = avatars
        self._on_posted = on_posted
        self._waiting: dict[str, deque[RelayToRoom]] = {}
        self.merged_posts = 0
        self.merged_lines = 0
        self.failed_posts = 0

    def queue(self, cmd: RelayToRoom) -> bool:
        """Note `cmd` as waiting for its room, in the order the commands arrive. True when the
        room needs a `drain` job: none is scheduled or running for it yet."""
        waiting = self._waiting.get(cmd.room_id)
        if waiting is None:
            self._waiting[cmd.room_id] = deque([cmd])
            return True
        waiting.append(cmd)
        return False

    @property
    def waiting_lines(self) -> int:
        return sum(map(len, self._waiting.values()))

    async def drain(self, room_id: str) -> None:
        """Post every line waiting for `room_id`, in order, those waiting together merged, until
        none is left (lines queued meanwhile included). A post that fails is logged and the
        next one goes on, as a failed job in a lane would. However the job ends, the room is
        left without one, so the next line queued schedules a new job."""
        waiting = self._waiting[room_id]
        try:
            while waiting:
                if not waiting[0].resent:
                    await trio.sleep(self._web.rate_eta("chat.postMessage", room_id))
                try:
                    group, merged = self._take(waiting)
                    await self._post(group, merged)
                except Exception:
                    self.failed_posts += 1
                    _log.exception("room_relay_failed", room=room_id)
                    continue
                for cmd in group:
                    self._on_posted(cmd)
        finally:
            del self._waiting[room_id]  # lines still here (a stop cut it short) are resent
            # by the domain after a restart, as every line not yet known to be in the room

    async def _post(self, group: list[RelayToRoom], merged: Post | None) -> None:
        first = group[0]
        if merged is None:
            await self._rooms.relay(first)
            return
        post = _with_merged_ids(merged, [c.post_id for c in group if c.post_id])
        await self._rooms.post(first.room_id, post, post_id=first.post_id or None)
        self.merged_posts += 1
        self.merged_lines += len(group)

    def _take(self, waiting: deque[RelayToRoom]) -> tuple[list[RelayToRoom], Post | None]:
        """The next group from the head of `waiting`, with its one post when it is more than
        one line (None: the head goes alone, through `Rooms.relay`)."""
        first = waiting.popleft()
        group, merged = [first], None
        if first.resent:
            return group, merged
        while waiting and _mergeable(first, waiting[0]):
            post = merged_post([c.line for c in [*group, waiting[0]]], self._avatars)
            if post is None:
                break  # one more line would not fit in one post
            group.append(waiting.popleft())
            merged = post
        return group, merged


def _mergeable(first: RelayToRoom, other: RelayToRoom) -> bool:
    return (
        not other.resent
        and other.takeover_id == first.takeover_id
        and (other.line.speaker, other.line.author_id) == (first.line.speaker, first.line.author_id)
    )


def _with_merged_ids(post: Post, ids: list[str]) -> Post:
    return replace(post, metadata={"event_type": EVENT_TYPE, "event_payload": {"merged": ids}})
