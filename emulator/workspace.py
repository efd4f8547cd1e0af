"""The workspace's state: users, tokens, channels, messages, presence. Pure: no I/O, no trio.

Owns the collections of records (see `records`), identity (ids, tokens, message timestamps),
authentication of tokens, visibility of channels, presence, and the `Happening` facts every
mutation appends to `pending` (a message posted, changed or deleted, a presence changed). The HTTP
layer drains `pending` after each call and turns the facts into events for the app and RTM.
The rules of each Web API family live beside this module (`conversations`, `messages`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from emulator.errors import SlackError
from emulator.records import Channel, Ephemeral, Message, Presence, User

__all__ = [
    "Channel",
    "Ephemeral",
    "Happening",
    "Message",
    "MessageChanged",
    "MessageDeleted",
    "MessagePosted",
    "PresenceChanged",
    "Principal",
    "User",
    "Workspace",
]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a token speaks for: a user, the bot user, or the app itself (xapp)."""

    user: User
    kind: Literal["user", "bot", "app"]


@dataclass(frozen=True, slots=True)
class MessagePosted:
    channel: str
    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MessageChanged:
    channel: str
    message: dict[str, Any]
    previous: dict[str, Any]
    event_ts: str


@dataclass(frozen=True, slots=True)
class MessageDeleted:
    channel: str
    previous: dict[str, Any]
    event_ts: str


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    user: str
    presence: Presence


Happening = MessagePosted | MessageChanged | MessageDeleted | PresenceChanged


class Workspace:
    """One team with its bot user, its app and its humans.

    `clock` gives wall-clock seconds for message timestamps and `created` fields; tests may pass
    their own. Every mutation bumps `version` (the console long-polls on it).
    """

    def __init__(
        self,
        *,
        team_name: str = "Takeover Emulated",
        app_name: str = "takeover",
        bot_token: str | None = None,
        app_token: str | None = None,
        signing_secret: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self._counters: dict[str, int] = {}
        self.team_id = self.new_id("T")
        self.team_name = team_name
        self.team_domain = "takeover-emulated"
        self.app_id = self.new_id("A")
        self.app_name = app_name
        self.verification_token = secrets.token_urlsafe(18)
        self.signing_secret = signing_secret or secrets.token_hex(16)
        self.app_token = (
            app_token or f"xapp-1-{self.app_id}-{secrets.randbelow(10**12)}-{secrets.token_hex(32)}"
        )
        self.users: dict[str, User] = {}
        self.by_name: dict[str, User] = {}
        self.tokens: dict[str, Principal] = {}
        self.channels: dict[str, Channel] = {}
        self.names: dict[str, str] = {}  # channel name -> id (archived ones keep theirs)
        self._dms: dict[tuple[str, ...], str] = {}  # sorted member ids -> DM or group DM id
        self.ephemerals: list[Ephemeral] = []
        self.home_views: dict[str, dict[str, Any]] = {}  # user id -> published Home view
        self.home_publishes: dict[str, int] = {}  # user id -> views.publish calls
        self.pending: list[Happening] = []
        self.version = 0
        self._last_ts = 0
        bot_id = self.new_id("B")
        self.bot = self.add_user(
            app_name, real_name=app_name, is_bot=True, bot_id=bot_id, token=bot_token
        )
        self.tokens[self.app_token] = Principal(self.bot, "app")

    # identity -------------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        n = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = n
        return f"{prefix}0{n:08d}"

    def new_ts(self) -> str:
        """A message timestamp: wall-clock microseconds, strictly increasing in the workspace."""
        micros = max(int(self.clock() * 1_000_000), self._last_ts + 1)
        self._last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def now(self) -> int:
        return int(self.clock())

    def touch(self) -> None:
        self.version += 1

    def emit(self, happening: Happening) -> None:
        self.pending.append(happening)
        self.touch()

    def drain(self) -> list[Happening]:
        out, self.pending = self.pending, []
        return out

    # users ----------------------------------------------------------------------------------

    def add_user(
        self,
        name: str,
        *,
        real_name: str = "",
        title: str = "",
        is_bot: bool = False,
        bot_id: str | None = None,
        token: str | None = None,
    ) -> User:
        if name in self.by_name:
            raise SlackError("name_taken")
        uid = self.new_id("U")
        prefix = "xoxb" if is_bot else "xoxp"
        token = token or f"{prefix}-{self.team_id[1:]}-{uid[1:]}-{secrets.token_hex(12)}"
        user = User(
            id=uid,
            name=name,
            real_name=real_name or name,
            title=title,
            token=token,
            created=self.now(),
            is_bot=is_bot,
            bot_id=bot_id,
            last_activity=self.now(),
        )
        self.users[uid] = user
        self.by_name[name] = user
        self.tokens[token] = Principal(user, "bot" if is_bot else "user")
        self.touch()
        return user

    def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise SlackError("not_authed")
        principal = self.tokens.get(token)
        if principal is None:
            raise SlackError("invalid_auth")
        return principal

    def user(self, user_id: str | None) -> User:
        user = self.users.get(user_id or "")
        if user is None:
            raise SlackError("user_not_found")
        return user

    def humans(self) -> list[User]:
        return [u for u in self.users.values() if not u.is_bot]

    def set_presence(self, user: User, presence: str) -> None:
        if presence not in ("auto", "away"):
            raise SlackError("invalid_presence")
        user.manual_away = presence == "away"
        new: Presence = "away" if user.manual_away else "active"
        if new != user.presence:
            user.presence = new
            self.emit(PresenceChanged(user.id, new))

    # channels -------------------------------------------------------------------------------

    def add_channel(self, channel: Channel) -> Channel:
        self.channels[channel.id] = channel
        if channel.is_im or channel.is_mpim:
            self._dms[tuple(sorted(set(channel.members)))] = channel.id
        else:
            self.names[channel.name] = channel.id
        self.touch()
        return channel

    def rename(self, channel: Channel, name: str) -> None:
        del self.names[channel.name]
        channel.name = name
        self.names[name] = channel.id
        self.touch()

    def dm_between(self, user_ids: list[str]) -> Channel | None:
        """The DM (two ids, or one for a self-DM) or group DM with exactly these members."""
        channel_id = self._dms.get(tuple(sorted(set(user_ids))))
        return self.channels[channel_id] if channel_id else None

    def visible(self, viewer: User, channel_id: str | None) -> Channel:
        """The channel if `viewer` may see it: public ones, or any they are a member of."""
        channel = self.channels.get(channel_id or "")
        if channel is None or (not channel.is_channel and viewer.id not in channel.members):
            raise SlackError("channel_not_found")
        return channel

    def find_channel(self, viewer: User, ref: str | None) -> Channel:
        """Resolve a `channel` argument: an id, `#name` or `name`, or a user id (their DM with viewer)."""
        ref = (ref or "").strip().removeprefix("#")
        if ref in self.channels:
            return self.visible(viewer, ref)
        if ref in self.users:
            return self.open_im(viewer, self.users[ref])
        if ref in self.names:
            return self.visible(viewer, self.names[ref])
        raise SlackError("channel_not_found")

    def open_im(self, viewer: User, other: User) -> Channel:
        existing = self.dm_between([viewer.id, other.id])
        if existing is not None and existing.is_im:
            return existing
        return self.add_channel(
            Channel(
                id=self.new_id("D"),
                name="",
                created=self.now(),
                creator=viewer.id,
                is_private=True,
                is_im=True,
                members=list(dict.fromkeys([viewer.id, other.id])),
            )
        )
