"""Takeover rooms: opening them, posting in them in order, closing them, and knowing them.

Owns `Rooms`:
- `open(cmd)`: conversations.create (private) named `room_prefix` + the customer id in Slack's
  channel-name alphabet; on `name_taken` (an archived room of a returning customer keeps its
  name, and a bot token cannot unarchive) the next of `-2`, `-3`, ...; conversations.invite of
  the agent; the header with the End Takeover button, pinned before anything else; then the
  whole transcript in order (`transport.slack_blocks.transcript_posts`). A room whose agent
  cannot be invited is archived again and the command fails.
- `relay(cmd)` / `close(cmd)`: one line in the speaker's name; a note then conversations.archive.
- the directory the inbound side asks: `state(channel)` ("opening", "open", "closed" or None),
  learning rooms opened before a restart from conversations.info (name starts with the prefix),
  and `is_member(channel, user)` from conversations.members.

Posts in rooms go through `post_reliably`: the Web API client already retries without
duplicating; when it still fails, the post is retried a few more times after a pause, looking
first for the earlier attempt's message when that one may have landed.

Room posts carry deterministic post ids (`transport.slack_room_lookup`): the header and the
transcript parts derive theirs from the takeover id, relayed lines get theirs from the domain.
So the commands the domain sends again after a restart find what the earlier run posted:
`OpenRoom(resume=True)` reuses the room the interrupted opening left and posts only the parts it
lacks; `RelayToRoom(resent=True)` and `CloseRoom(resent=True)` look for their post first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog
import trio

from actors.ports import CloseRoom, OpenRoom, RelayToRoom, RoomOpened
from transport.slack_blocks import Post, line_posts, note_post, room_header_post, transcript_posts
from transport.slack_errors import SlackApiError, SlackError, SlackRateLimited, SlackTransportError
from transport.slack_room_lookup import (
    find_room,
    header_post_id,
    note_post_id,
    part_post_id,
    transcript_post_id,
)
from transport.slack_text import room_base_name, room_name
from transport.slack_web import SlackWebClient
from transport.slack_web_post import PostIds

__all__ = ["Room", "RoomState", "Rooms", "post_reliably"]

_log = structlog.get_logger("transport.slack_rooms")

RoomState = Literal["opening", "open", "closed"]
MAX_NAME_TRIES = 200
_KNOWN_FINE = frozenset({"already_in_channel", "already_pinned", "already_archived"})
# Slack's own failures: worth another try; `fatal_error` may have half-happened.
_SERVER_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
RESENT_LOOKBACK_S = 900.0
"""How far back a close note sent again after a restart is looked for."""


@dataclass(slots=True)
class Room:
    id: str
    name: str
    state: RoomState
    takeover_id: str | None = None
    agent_id: str | None = None
    members: set[str] = field(default_factory=set)


async def post_reliably(
    web: SlackWebClient,
    channel: str,
    post: Post,
    *,
    post_ids: PostIds,
    rounds: int = 3,
    pause_s: float = 2.0,
    wall_clock: Callable[[], float] = time.time,
    post_id: str | None = None,
    look_since: float | None = None,
) -> dict[str, Any]:
    """chat.postMessage that survives a longer Slack outage without ever posting twice.

    `post_id`: the post's own deterministic id (else a fresh one); `look_since`: the post may
    have landed before a restart, at or after this epoch time: look for it before posting."""
    post_id = post_id or post_ids.next()
    started = wall_clock() if look_since is None else look_since
    maybe_sent = look_since is not None
    for round_ in range(rounds + 1):
        if maybe_sent:
            found = await web.find_post(channel, post_id, oldest=started - 60.0)
            if found is not None:
                return found
        try:
            return await web.post_message(channel, post_id=post_id, **post.params())
        except (SlackTransportError, SlackApiError) as e:
            server = isinstance(e, SlackApiError) and e.error_code in _SERVER_ERRORS
            retryable = isinstance(e, SlackTransportError | SlackRateLimited) or server
            if round_ == rounds or not retryable:
                raise
            maybe_sent = maybe_sent or getattr(e, "maybe_sent", False) or server
            _log.warning("room_post_retry", channel=channel, error=str(e), round=round_ + 1)
            await trio.sleep(pause_s * 2**round_)
    raise AssertionError("unreachable")


class Rooms:
    def __init__(
        self,
        web: SlackWebClient,
        *,
        prefix: str,
        avatars: Mapping[str, str] = {},
        pause_s: float = 2.0,
        wall_clock: Callable[[], float] = time.time,
        keep: int = 10_000,
    ) -> None:
        self._web = web
        self._prefix = prefix
        self._avatars = avatars
        self._pause_s = pause_s
        self._wall_clock = wall_clock
        self._keep = keep
        self._post_ids = PostIds()
        self._rooms: dict[str, Room] = {}
        self._by_name: dict[str, str] = {}
        self._not_rooms: OrderedDict[str, None] = OrderedDict()
        self._next_attempt: dict[str, int] = {}
        self._takeovers: dict[str, str] = {}
        self._closed: OrderedDict[str, None] = OrderedDict()

    # --- the directory --------------------------------------------------------------------

    def get(self, channel: str) -> Room | None:
        return self._rooms.get(channel)

    def room_of(self, takeover_id: str) -> str | None:
        """The channel created for a takeover, if any."""
        return self._takeovers.get(takeover_id)

    def link(self, name: str) -> str:
        """A channel mention for a room we know by name, else the plain `#name`."""
        room_id = self._by_name.get(name)
        return f"<#{room_id}>" if room_id else f"#{name}"

    def _add(self, room: Room) -> Room:
        self._rooms[room.id] = room
        self._by_name[room.name] = room.id
        return room

    async def state(self, channel: str) -> RoomState | None:
        """Whether `channel` is one of our rooms; rooms unknown here are looked up once."""
        room = self._rooms.get(channel)
        if room is not None:
            return room.state
        if channel in self._not_rooms or channel.startswith("D"):
            return None
        try:
            info = (await self._web.call("conversations.info", channel=channel))["channel"]
        except SlackApiError as e:
            _log.info("room_lookup_refused", channel=channel, error=e.error_code)
            info = {}
        except SlackError as e:  # Slack unreachable: let the domain decide
            _log.warning("room_lookup_failed", channel=channel, error=str(e))
            return "open"
        name = info.get("name")
        if isinstance(name, str) and name.startswith(self._prefix) and not info.get("is_im"):
            state: RoomState = "closed" if info.get("is_archived") else "open"
            return self._add(Room(channel, name, state)).state
        self._not_rooms[channel] = None
        while len(self._not_rooms) > self._keep:
            self._not_rooms.popitem(last=False)
        return None

    async def is_member(self, channel: str, user: str) -> bool:
        """conversations.members, paged; raises `SlackError` when Slack cannot tell."""
        cursor = ""
        while True:
            page = await self._web.call(
                "conversations.members", channel=channel, limit=200, cursor=cursor or None
            )
            members = page.get("members") or []
            if user in members:
                return True
            metadata = page.get("response_metadata")
            cursor = metadata.get("next_cursor", "") if isinstance(metadata, dict) else ""
            if not cursor:
                return False

    # --- commands -------------------------------------------------------------------------

    async def _create(self, customer_id: str) -> Room:
        base = room_base_name(self._prefix, customer_id)
        attempt = self._next_attempt.get(base, 1)
        for _ in range(MAX_NAME_TRIES):
            name = room_name(base, attempt)
            try:
                answer = await self._web.call("conversations.create", name=name, is_private=True)
            except SlackApiError as e:
                if e.error_code != "name_taken":
                    raise
                attempt += 1
                continue
            self._next_attempt[base] = attempt + 1
            channel = answer["channel"]
            return self._add(Room(channel["id"], channel.get("name") or name, "opening"))
        raise SlackApiError("conversations.create", "name_taken", {"ok": False, "name": base})

    async def _fine(self, method: str, **params: Any) -> None:
        try:
            await self._web.call(method, **params)
        except SlackApiError as e:
            if e.error_code not in _KNOWN_FINE:
                raise

    async def post(
        self,
        channel: str,
        post: Post,
        *,
        post_id: str | None = None,
        look_since: float | None = None,
    ) -> dict[str, Any]:
        return await post_reliably(
            self._web,
            channel,
            post,
            post_ids=self._post_ids,
            pause_s=self._pause_s,
            wall_clock=self._wall_clock,
            post_id=post_id,
            look_since=look_since,
        )

    async def _resumed(self, cmd: OpenRoom) -> tuple[Room, set[str]] | None:
        """The room an opening cut short by a restart left, with the post ids it holds."""
        found = await find_room(self._web, self._prefix, cmd.customer_id, cmd.takeover_id)
        if found is None:
            return None
        channel, posted = found
        _log.info(
            "room_resumed", takeover=cmd.takeover_id, channel=channel["id"], posts=len(posted)
        )
        return self._add(Room(channel["id"], channel.get("name") or "", "opening")), posted

    async def open(self, cmd: OpenRoom) -> RoomOpened:
        resumed = await self._resumed(cmd) if cmd.resume else None
        room, posted = resumed or (await self._create(cmd.customer_id), set[str]())
        room.takeover_id, room.agent_id = cmd.takeover_id, cmd.agent_id
        self._takeovers[cmd.takeover_id] = room.id
        log = _log.bind(takeover=cmd.takeover_id, room=room.name, channel=room.id)
        try:
            await self._fine("conversations.invite", channel=room.id, users=cmd.agent_id)
        except SlackError as e:
            log.error("room_invite_failed", agent=cmd.agent_id, error=str(e))
            self._forget(room)
            await self._archive_quietly(room)
            raise
        room.members.add(cmd.agent_id)
        header = room_header_post(
            takeover_id=cmd.takeover_id,
            customer_id=cmd.customer_id,
            customer_name=cmd.customer_name,
            agent_id=cmd.agent_id,
            lines=len(cmd.transcript),
        )
        try:
            if header_post_id(cmd.takeover_id) not in posted:
                answer = await self.post(room.id, header, post_id=header_post_id(cmd.takeover_id))
                await self._fine("pins.add", channel=room.id, timestamp=answer["ts"])
        except SlackError as e:
            log.error("room_header_failed", error=str(e))
        failed = 0
        for index, post in enumerate(transcript_posts(cmd.transcript, self._avatars)):
            post_id = transcript_post_id(cmd.takeover_id, index)
            if post_id in posted:
                continue
            try:
                await self.post(room.id, post, post_id=post_id)
            except SlackError as e:
                failed += 1
                log.error("room_transcript_post_failed", error=str(e))
        if failed:
            warning = f":warning: {failed} part(s) of the transcript could not be posted."
            try:
                await self.post(room.id, note_post(warning))
            except SlackError as e:
                log.error("room_transcript_note_failed", error=str(e))
        log.info("room_opened", agent=cmd.agent_id, transcript=len(cmd.transcript))
        return RoomOpened(room.id, room.name)

    def _forget(self, room: Room) -> None:
        """A closed room is kept a while (late clicks), then forgotten (Slack still knows it)."""
        room.state = "closed"
        if room.takeover_id is not None:
            self._takeovers.pop(room.takeover_id, None)
        self._closed[room.id] = None
        while len(self._closed) > self._keep:
            old, _ = self._closed.popitem(last=False)
            gone = self._rooms.pop(old, None)
            if gone is not None and self._by_name.get(gone.name) == old:
                del self._by_name[gone.name]

    async def _archive_quietly(self, room: Room) -> None:
        try:
            await self._fine("conversations.archive", channel=room.id)
        except SlackError as e:
            _log.error("room_archive_failed", channel=room.id, error=str(e))

    async def relay(self, cmd: RelayToRoom) -> None:
        look_since = cmd.line.at if cmd.resent else None
        for index, post in enumerate(line_posts(cmd.line, self._avatars)):
            post_id = part_post_id(cmd.post_id, index) if cmd.post_id else None
            await self.post(cmd.room_id, post, post_id=post_id, look_since=look_since)

    async def close(self, cmd: CloseRoom) -> None:
        room = self._rooms.get(cmd.room_id)
        if cmd.note:
            look_since = self._wall_clock() - RESENT_LOOKBACK_S if cmd.resent else None
            post_id = note_post_id(cmd.takeover_id)
            try:
                await self.post(
                    cmd.room_id, note_post(cmd.note), post_id=post_id, look_since=look_since
                )
            except SlackApiError as e:  # e.g. already archived: the archive below says so
                _log.warning("room_note_refused", channel=cmd.room_id, error=e.error_code)
            except SlackError as e:
                if not cmd.resent:
                    raise
                _log.warning("room_note_lookup_failed", channel=cmd.room_id, error=str(e))
        await self._fine("conversations.archive", channel=cmd.room_id)
        if room is not None:
            self._forget(room)
        _log.info("room_closed", takeover=cmd.takeover_id, channel=cmd.room_id)

    def opened(self, channel: str) -> None:
        """The domain has the room now: its messages may flow."""
        room = self._rooms.get(channel)
        if room is not None and room.state == "opening":
            room.state = "open"
