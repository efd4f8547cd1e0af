"""The workspace's records as Slack shapes them: users, messages, ephemerals, channels.

Owns each record's fields and its JSON form in Web API responses (`users.info`, `conversations.info`,
`conversations.history`). Mutable state records, changed only through the workspace's rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Channel", "Ephemeral", "Message", "Presence", "User"]

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
