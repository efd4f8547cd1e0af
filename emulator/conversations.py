"""Slack's rules for conversations: names, membership, archiving, DMs. Pure, over a `Workspace`.

Each function takes the acting principal and plain arguments, mutates the workspace, and either
returns the channel it acted on or raises `SlackError` with the code Slack answers.
"""

from __future__ import annotations

import re

from emulator.errors import SlackError
from emulator.workspace import Channel, Principal, User, Workspace

__all__ = [
    "archive",
    "check_name",
    "create",
    "invite",
    "join",
    "open_conversation",
    "rename",
    "set_topic",
    "unarchive",
]

_NAME_CHARS = re.compile(r"^[a-z0-9_-]+$")
_PUNCTUATION_ONLY = re.compile(r"^[_-]+$")
MAX_NAME = 80


def check_name(ws: Workspace, name: str | None, *, exclude: str | None = None) -> str:
    """Validate a channel name as Slack does; names of archived channels stay taken."""
    if not name:
        raise SlackError("invalid_name_required")
    if len(name) > MAX_NAME:
        raise SlackError("invalid_name_maxlength")
    if not _NAME_CHARS.match(name):
        raise SlackError("invalid_name_specials")
    if _PUNCTUATION_ONLY.match(name):
        raise SlackError("invalid_name_punctuation")
    if ws.names.get(name, exclude) != exclude:
        raise SlackError("name_taken")
    return name


def create(ws: Workspace, actor: Principal, name: str | None, *, is_private: bool) -> Channel:
    name = check_name(ws, name)
    return ws.add_channel(
        Channel(
            id=ws.new_id("C"),
            name=name,
            created=ws.now(),
            creator=actor.user.id,
            is_private=is_private,
            members=[actor.user.id],
        )
    )


def _member_channel(ws: Workspace, actor: Principal, channel_id: str | None) -> Channel:
    channel = ws.visible(actor.user, channel_id)
    if actor.user.id not in channel.members:
        raise SlackError("not_in_channel")
    return channel


def invite(ws: Workspace, actor: Principal, channel_id: str | None, users: list[str]) -> Channel:
    channel = ws.visible(actor.user, channel_id)
    if channel.is_im or channel.is_mpim:
        raise SlackError("method_not_supported_for_channel_type")
    if channel.is_archived:
        raise SlackError("is_archived")
    if actor.user.id not in channel.members:
        raise SlackError("not_in_channel")
    if not users:
        raise SlackError("no_user")
    invited: list[User] = []
    for user_id in users:
        if user_id == actor.user.id:
            raise SlackError("cant_invite_self")
        user = ws.user(user_id)
        if user.id in channel.members:
            raise SlackError("already_in_channel")
        invited.append(user)
    for user in invited:
        channel.members.append(user.id)
    ws.touch()
    return channel


def join(ws: Workspace, actor: Principal, channel_id: str | None) -> tuple[Channel, bool]:
    """Join a public channel; returns the channel and whether the actor was already in it."""
    channel = ws.visible(actor.user, channel_id)
    if not channel.is_channel:
        raise SlackError("method_not_supported_for_channel_type")
    if channel.is_archived:
        raise SlackError("is_archived")
    already = actor.user.id in channel.members
    if not already:
        channel.members.append(actor.user.id)
        ws.touch()
    return channel, already


def archive(ws: Workspace, actor: Principal, channel_id: str | None) -> Channel:
    channel = ws.visible(actor.user, channel_id)
    if channel.is_im or channel.is_mpim:
        raise SlackError("method_not_supported_for_channel_type")
    if channel.is_archived:
        raise SlackError("already_archived")
    if channel.name == "general":
        raise SlackError("cant_archive_general")
    if actor.user.id not in channel.members:
        raise SlackError("not_in_channel")
    channel.is_archived = True
    ws.touch()
    return channel


def unarchive(ws: Workspace, actor: Principal, channel_id: str | None) -> Channel:
    if actor.kind == "bot":
        # Slack: bot tokens cannot unarchive; a returning customer needs a new room name.
        raise SlackError("user_is_bot")
    channel = ws.visible(actor.user, channel_id)
    if channel.is_im or channel.is_mpim:
        raise SlackError("method_not_supported_for_channel_type")
    if not channel.is_archived:
        raise SlackError("not_archived")
    channel.is_archived = False
    ws.touch()
    return channel


def rename(ws: Workspace, actor: Principal, channel_id: str | None, name: str | None) -> Channel:
    channel = _member_channel(ws, actor, channel_id)
    if channel.is_im or channel.is_mpim:
        raise SlackError("method_not_supported_for_channel_type")
    if channel.is_archived:
        raise SlackError("is_archived")
    ws.rename(channel, check_name(ws, name, exclude=channel.id))
    return channel


def set_topic(ws: Workspace, actor: Principal, channel_id: str | None, topic: str) -> Channel:
    channel = _member_channel(ws, actor, channel_id)
    if channel.is_archived:
        raise SlackError("is_archived")
    if len(topic) > 250:
        raise SlackError("too_long")
    channel.topic = topic
    ws.touch()
    return channel


def open_conversation(
    ws: Workspace, actor: Principal, channel_id: str | None, users: list[str]
) -> tuple[Channel, bool]:
    """conversations.open: an existing DM by id, or the DM/group DM with `users`.

    Returns the channel and whether it existed already.
    """
    if channel_id:
        channel = ws.visible(actor.user, channel_id)
        if not (channel.is_im or channel.is_mpim):
            raise SlackError("method_not_supported_for_channel_type")
        return channel, True
    if not users:
        raise SlackError("users_list_not_supplied")
    if len(users) > 8:
        raise SlackError("too_many_users")
    others = [ws.user(u) for u in dict.fromkeys(users)]
    if len(others) == 1:
        existed = ws.dm_between([actor.user.id, others[0].id]) is not None
        return ws.open_im(actor.user, others[0]), existed
    members = sorted({actor.user.id, *(u.id for u in others)})
    existing = ws.dm_between(members)
    if existing is not None:
        return existing, True
    names = sorted(ws.users[m].name for m in members)
    channel = ws.add_channel(
        Channel(
            id=ws.new_id("G"),
            name="mpdm-" + "--".join(names) + "-1",
            created=ws.now(),
            creator=actor.user.id,
            is_private=True,
            is_mpim=True,
            members=members,
        )
    )
    return channel, False
