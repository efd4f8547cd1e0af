"""The workspace's state: users, tokens, channels, messages, presence. Pure: no I/O, no trio.

Owns the records (`User`, `Channel`, `Message`, `Ephemeral`), identity (ids, tokens, message
timestamps), authentication of tokens, visibility of channels, and the `Happening` facts every
mutation appends to `pending` (a message posted, changed or deleted, a presence changed). The HTTP
layer drains `pending` after each call and turns the facts into events for the app and RTM.
The rules of each Web API family live beside this module (`conversations`, `messages`, `users`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from emulator.errors import SlackError

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

Presence = Literal["active", "away"]


@dataclass(slots=True)
class User:
    id: str
    name: str
    real_name: str
    title: str
    token: str
    created: int
    is_bot: bool = False
    bot_id: str | None = None
    presence: Presence = "active"
    manual_away: bool = False
    last_activity: int = 0

    def profile(self, team_id: str) -> dict[str, Any]:
        avatar = f"https://avatars.emulator.invalid/{self.id}"
        profile: dict[str, Any] = {
            "title": self.title,
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.name,
            "display_name_normalized": self.name,
            "status_text": "",
            "status_emoji": "",
            "status_expiration": 0,
            "avatar_hash": self.id.lower(),
            "team": team_id,
            **{f"image_{n}": f"{avatar}_{n}.png" for n in (24, 32, 48, 72, 192, 512)},
            "image_original": f"{avatar}_original.png",
        }
        if self.is_bot:
            profile["bot_id"] = self.bot_id
        else:
            profile["email"] = f"{self.name}@emulator.invalid"
        return profile

    def to_json(self, team_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": False,
            "color": "9f69e7",
            "real_name": self.real_name,
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": self.profile(team_id),
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": self.created,
            "has_2fa": False,
        }


@dataclass(slots=True)
class Message:
    ts: str
    user: str
    text: str
    blocks: list[Any] | None = None
    attachments: list[Any] | None = None
    bot_id: str | None = None
    app_id: str | None = None
    username: str | None = None
    icon_url: str | None = None
    icon_emoji: str | None = None
    metadata: dict[str, Any] | None = None
    thread_ts: str | None = None
    edited: dict[str, str] | None = None
    pinned: bool = False
    client_msg_id: str | None = None

    def to_json(self, channel_id: str, *, metadata: bool = False) -> dict[str, Any]:
        """The message as Slack returns it from conversations.history."""
        out: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text}
        if self.bot_id is not None:
            out["bot_id"] = self.bot_id
            out["app_id"] = self.app_id
            if self.username is not None or self.icon_url is not None or self.icon_emoji:
                out["subtype"] = "bot_message"
                out["username"] = self.username
                icons = {"image_48": self.icon_url} if self.icon_url else {}
                if self.icon_emoji:
                    icons["emoji"] = self.icon_emoji
                out["icons"] = icons
        out["user"] = self.user
        if self.client_msg_id is not None:
            out["client_msg_id"] = self.client_msg_id
        if self.blocks is not None:
            out["blocks"] = self.blocks
        if self.attachments:
            out["attachments"] = self.attachments
        if self.thread_ts is not None:
            out["thread_ts"] = self.thread_ts
        if self.edited is not None:
            out["edited"] = dict(self.edited)
        if self.pinned:
            out["pinned_to"] = [channel_id]
        if metadata and self.metadata is not None:
            out["metadata"] = self.metadata
        return out


@dataclass(slots=True)
class Ephemeral:
    channel: str
    user: str
    message: Message


@dataclass(slots=True)
class Channel:
    id: str
    name: str
    created: int
    creator: str
    is_private: bool = False
    is_im: bool = False
    is_mpim: bool = False
    is_archived: bool = False
    members: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    by_ts: dict[str, Message] = field(default_factory=dict)
    topic: str = ""
    purpose: str = ""

    @property
    def is_channel(self) -> bool:
        return not (self.is_private or self.is_im or self.is_mpim)

    @property
    def channel_type(self) -> str:
        """The `channel_type` of message events: channel, group, im or mpim."""
        if self.is_im:
            return "im"
        if self.is_mpim:
            return "mpim"
        return "group" if self.is_private else "channel"

    def im_user(self, viewer: str) -> str:
        others = [m for m in self.members if m != viewer]
        return others[0] if others else viewer

    def to_json(self, viewer: str) -> dict[str, Any]:
        """The conversation object as conversations.info/create return it to `viewer`."""
        out: dict[str, Any] = {
            "id": self.id,
            "created": self.created,
            "is_archived": self.is_archived,
        }
        if self.is_im:
            out.update(
                is_im=True, is_org_shared=False, user=self.im_user(viewer), is_user_deleted=False
            )
            out["priority"] = 0
            return out
        out.update(
            name=self.name,
            name_normalized=self.name,
            is_channel=self.is_channel,
            is_group=self.is_private and not self.is_mpim,
            is_im=False,
            is_mpim=self.is_mpim,
            is_private=self.is_private or self.is_mpim,
            is_general=self.name == "general",
            is_shared=False,
            is_ext_shared=False,
            is_org_shared=False,
            is_pending_ext_shared=False,
            is_member=viewer in self.members,
            creator=self.creator,
            unlinked=0,
            pending_shared=[],
            previous_names=[],
            topic={"value": self.topic, "creator": "", "last_set": 0},
            purpose={"value": self.purpose, "creator": "", "last_set": 0},
        )
        return out


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
        self.ephemerals: list[Ephemeral] = []
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
        self.touch()
        return channel

    def visible(self, viewer: User, channel_id: str | None) -> Channel:
        """The channel if `viewer` may see it: public ones, or any they are a member of."""
        channel = self.channels.get(channel_id or "")
        if channel is None or (not channel.is_channel and viewer.id not in channel.members):
            raise SlackError("channel_not_found")
        return channel

    def find_channel(self, viewer: User, ref: str | None) -> Channel:
        """Resolve a `channel` argument: an id, `#name` or `name`, or a user id (their DM with viewer)."""
        ref = (ref or "").strip()
        if ref.startswith("#"):
            ref = ref[1:]
        if ref in self.channels:
            return self.visible(viewer, ref)
        if ref in self.users and ref != viewer.id:
            return self.open_im(viewer, self.users[ref])
        for channel in self.channels.values():
            if channel.name == ref and not channel.is_im and not channel.is_mpim:
                return self.visible(viewer, channel.id)
        raise SlackError("channel_not_found")

    def open_im(self, viewer: User, other: User) -> Channel:
        pair = sorted({viewer.id, other.id})
        for channel in self.channels.values():
            if channel.is_im and sorted(set(channel.members)) == pair:
                return channel
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
