"""Customer lines into their rooms, merged while they wait for the channel's turn.

Owns `RoomRelay`. Slack lets an app post about once a second per channel (chat.postMessage's
per-channel pace in `transport.slack_rate`). A customer who types faster than that, or a burst
after a stall, would build a queue that a steady one post a second never drains. So the lines
waiting for a room when its turn comes are posted together: one message of several lines in
the speaker's name (at most `MAX_POST_CHARS`), as a person typing fast would read in Slack.
The merged message's metadata carries every line's post id (`event_payload.merged`), so a line
sent again after a restart finds it (`transport.slack_web_post.post_ids_of`) and is not posted
twice.

The Slack actor calls `queue(cmd)` as each `RelayToRoom` arrives, in order, and runs
`relay(cmd)` as that command's job in the room's lane: the job waits for the channel's turn,
then posts its line together with the mergeable lines queued behind it and returns the commands
it posted; a job whose line an earlier job already took returns nothing. Lines sent again after
a restart (`resent`) and lines too long for one post are never merged: they go alone through
`Rooms.relay`, as before.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import replace

import trio

from actors.ports import RelayToRoom
from transport.slack_blocks import Post, merged_post
from transport.slack_rooms import Rooms
from transport.slack_web import SlackWebClient
from transport.slack_web_post import EVENT_TYPE

__all__ = ["RoomRelay"]


class RoomRelay:
    """Relays customer lines to rooms in order, merging those that wait for the same turn."""

    def __init__(self, web: SlackWebClient, rooms: Rooms, avatars: Mapping[str, str]) -> None:
        self._web = web
        self._rooms = rooms
        self._avatars = avatars
        self._waiting: dict[str, deque[RelayToRoom]] = {}
        self.merged_posts = 0
        self.merged_lines = 0

    def queue(self, cmd: RelayToRoom) -> None:
        """Note `cmd` as waiting for its room; call in the order the commands arrive."""
        self._waiting.setdefault(cmd.room_id, deque()).append(cmd)

    async def relay(self, cmd: RelayToRoom) -> list[RelayToRoom]:
        """Post `cmd`'s line and those merged with it; the commands posted, in order."""
        waiting = self._waiting.get(cmd.room_id)
        if not waiting or waiting[0] is not cmd:
            return []  # an earlier job posted it
        if not cmd.resent:
            await trio.sleep(self._web.rate_eta("chat.postMessage", cmd.room_id))
        group = self._take(waiting)
        if not waiting:
            del self._waiting[cmd.room_id]
        post = merged_post([c.line for c in group], self._avatars) if len(group) > 1 else None
        if post is None:
            await self._rooms.relay(cmd)
            return [cmd]
        ids = [c.post_id for c in group if c.post_id]
        post = _with_merged_ids(post, ids)
        await self._rooms.post(cmd.room_id, post, post_id=cmd.post_id or None)
        self.merged_posts += 1
        self.merged_lines += len(group)
        return group

    def _take(self, waiting: deque[RelayToRoom]) -> list[RelayToRoom]:
        first = waiting.popleft()
        group = [first]
        if first.resent:
            return group
        while waiting and _mergeable(first, waiting[0]):
            candidate = [*group, waiting[0]]
            if merged_post([c.line for c in candidate], self._avatars) is None:
                break  # one more line would not fit in one post
            group.append(waiting.popleft())
        return group


def _mergeable(first: RelayToRoom, other: RelayToRoom) -> bool:
    return (
        not other.resent
        and other.takeover_id == first.takeover_id
        and (other.line.speaker, other.line.author_id) == (first.line.speaker, first.line.author_id)
    )


def _with_merged_ids(post: Post, ids: list[str]) -> Post:
    return replace(post, metadata={"event_type": EVENT_TYPE, "event_payload": {"merged": ids}})
