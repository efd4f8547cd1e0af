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
) -> dict[str, Any]:
    """chat.postMessage that survives a longer Slack outage without ever posting twice."""
    post_id = post_ids.next()
    started = wall_clock()
    maybe_sent = False
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

    async def _post(self, channel: str, post: Post) -> dict[str, Any]:
        return await post_reliably(
            self._web,
            channel,
            post,
            post_ids=self._post_ids,
            pause_s=self._pause_s,
            wall_clock=self._wall_clock,
        )

    async def open(self, cmd: OpenRoom) -> RoomOpened:
        room = await self._create(cmd.customer_id)
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
            posted = await self._post(room.id, header)
            await self._fine("pins.add", channel=room.id, timestamp=posted["ts"])
        except SlackError as e:
            log.error("room_header_failed", error=str(e))
        failed = 0
        for post in transcript_posts(cmd.transcript, self._avatars):
            try:
                await self._post(room.id, post)
            except SlackError as e:
                failed += 1
                log.error("room_transcript_post_failed", error=str(e))
        if failed:
            warning = f":warning: {failed} part(s) of the transcript could not be posted."
            try:
                await self._post(room.id, note_post(warning))
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
        for post in line_posts(cmd.line, self._avatars):
            await self._post(cmd.room_id, post)

    async def close(self, cmd: CloseRoom) -> None:
        room = self._rooms.get(cmd.room_id)
        if cmd.note:
            try:
                await self._post(cmd.room_id, note_post(cmd.note))
            except SlackApiError as e:  # e.g. already archived: the archive below says so
                _log.warning("room_note_refused", channel=cmd.room_id, error=e.error_code)
        await self._fine("conversations.archive", channel=cmd.room_id)
        if room is not None:
            self._forget(room)
        _log.info("room_closed", takeover=cmd.takeover_id, channel=cmd.room_id)

    def opened(self, channel: str) -> None:
        """The domain has the room now: its messages may flow."""
        room = self._rooms.get(channel)
        if room is not None and room.state == "opening":
            room.state = "open"
