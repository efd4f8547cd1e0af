"""One takeover's record, and the task that opens its room once an agent has accepted.

Owns `Takeover` (what a session knows of its current takeover) and `open_room`, run in the
domain's nursery so that the session keeps taking customer messages (and acknowledging them)
while Slack creates the room and posts the transcript. The result comes back to the session as
a `TakeoverReady` message. The room is routed to its session (`ctx.rooms`) the moment Slack
answers, before that message is even sent: Slack hands on the room's first messages right away,
and the session keeps them (`Takeover.early`) until it has handled `TakeoverReady`.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog
import trio

from actors.context import DomainContext
from actors.messages import GetProfile, ProfileFetched, TakeoverReady
from actors.ports import (
    AgentProfile,
    EndTakeoverRequested,
    FetchAgentProfile,
    OpenRoom,
    RoomMessagePosted,
    RoomOpened,
    TranscriptLine,
)
from actors.runtime import ActorError, Reply, ask, tell

if TYPE_CHECKING:
    from actors.session import SessionActor

__all__ = ["Takeover", "open_room"]

_log = structlog.get_logger("actors.takeover")

_SEEN = 256  # room message ids remembered per takeover, against Slack redeliveries


class Takeover:
    """Accepted at `accepted_at` (trio time); `room_id` is None while the room is being opened,
    `pending` holds the customer lines (with their seqs) to relay once it is, and `early` the
    room's facts that arrived between Slack's answer and `TakeoverReady`. `catch_up_since`
    (epoch seconds) is set on a takeover rebuilt after a restart: the room's messages since then
    are read back from Slack once, for those the stopped daemon never recorded."""

    __slots__ = (
        "accepted_at",
        "agent_id",
        "catch_up_since",
        "early",
        "escalation_id",
        "offer_id",
        "pending",
        "profile",
        "responded",
        "room_id",
        "room_name",
        "seen",
        "takeover_id",
    )

    def __init__(
        self, takeover_id: str, escalation_id: str, agent_id: str, offer_id: str, accepted_at: float
    ) -> None:
        self.takeover_id = takeover_id
        self.escalation_id = escalation_id
        self.agent_id = agent_id
        self.offer_id = offer_id
        self.accepted_at = accepted_at
        self.room_id: str | None = None
        self.room_name: str | None = None
        self.profile = AgentProfile(agent_id, agent_id)
        self.pending: list[tuple[int, TranscriptLine]] = []
        self.early: list[RoomMessagePosted | EndTakeoverRequested] = []
        self.responded = False
        self.seen: deque[str] = deque(maxlen=_SEEN)
        self.catch_up_since: float | None = None


async def agent_profile(ctx: DomainContext, agent_id: str) -> AgentProfile:
    """The agent's profile from their actor's cache, else from Slack (then cached)."""
    box = ctx.agents.get(agent_id)
    if box is not None:
        try:
            with trio.fail_after(ctx.slack_timeout_s):
                cached = await ask(box, GetProfile)
            if cached is not None:
                return cached
        except (ActorError, trio.TooSlowError):
            pass
    profile: AgentProfile
    try:
        with trio.fail_after(ctx.slack_timeout_s):
            profile = await ask(ctx.slack, lambda r: FetchAgentProfile(agent_id, r))
    except Exception as e:
        _log.warning("agent_profile_unavailable", agent=agent_id, error=repr(e))
        return AgentProfile(agent_id, agent_id)
    if box is not None:
        with contextlib.suppress(ActorError):
            await tell(box, ProfileFetched(profile))
    return profile


class _RoomReply(Reply[RoomOpened]):
    """`OpenRoom`'s reply; `on_room` runs when Slack answers, before anyone is woken."""

    __slots__ = ("_on_room",)

    def __init__(self, on_room: Callable[[RoomOpened], None]) -> None:
        super().__init__()
        self._on_room = on_room

    def send(self, value: RoomOpened) -> bool:
        if self.answered:
            return False
        self._on_room(value)
        return super().send(value)


async def open_room(
    ctx: DomainContext,
    session: SessionActor,
    takeover_id: str,
    agent_id: str,
    customer_id: str,
    customer_name: str,
    transcript: tuple[TranscriptLine, ...],
    resume: bool = False,
) -> None:
    """Fetch the agent's profile and open the room, then tell the session (room None: failed).
    `resume`: a restart interrupted the opening; Slack finds what was done already."""
    profile = await agent_profile(ctx, agent_id)
    room: RoomOpened | None = None

    def route(opened: RoomOpened) -> None:
        ctx.rooms[opened.room_id] = session
        tk = session.takeover  # what the room said before it was routed comes first
        if tk is not None and tk.takeover_id == takeover_id and tk.room_id is None:
            tk.early.extend(ctx.unrouted.take(opened.room_id))

    reply = _RoomReply(route)
    try:
        with trio.fail_after(ctx.room_timeout_s):
            await tell(
                ctx.slack,
                OpenRoom(
                    takeover_id, customer_id, customer_name, agent_id, transcript, reply, resume
                ),
            )
            room = await reply.receive()
    except Exception as e:
        reply.fail(e)  # a late answer must not route the room any more
        _log.error("room_open_failed", takeover=takeover_id, agent=agent_id, error=repr(e))
    try:
        await tell(session.mailbox, TakeoverReady(takeover_id, room, profile))
    except ActorError:
        _log.warning("session_gone_before_room", takeover=takeover_id)
        if room is not None and ctx.rooms.get(room.room_id) is session:
            del ctx.rooms[room.room_id]
