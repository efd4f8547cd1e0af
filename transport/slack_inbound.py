"""Inbound Slack traffic, whatever carried it, to the domain: decode, check, de-duplicate, deliver.

Owns `Inbound`, one ordered pipeline (one task) that every transport feeds: Socket Mode
envelopes, RTM events and Events API requests come in as `InboundRequest`s (`from_envelope`,
`from_rtm` normalise them). Transports only enqueue (`submit`), so they ack Slack at once; the
work happens here, in arrival order, from a task of its own, which is what
lets the domain's `deliver` wait while the actor keeps executing commands.

Per item: `slack_decode.decode`; refusals are logged (`slack_inbound_rejected`), never raised;
Events API redeliveries are dropped by event id and room messages by message id; room messages
and end requests need a channel that is one of our rooms (`Rooms.state`); an end request also
needs a room member (conversations.members), others are told privately that only room members
can end the takeover. Facts about a room that is still being opened are held back until the
Slack actor calls `settle_room` (after answering `OpenRoom`), so the domain learns the room
before its messages. `settle_room` and `publish_nowait` (presence seen by polls) never wait: the
pipeline may itself be waiting on the domain, which may be waiting on the Slack actor.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import assert_never

import structlog
import trio

from actors.ports import (
    EndTakeoverRequested,
    OfferAnswered,
    PresenceChanged,
    RoomMessagePosted,
    SlackFact,
)
from transport.slack_decode import (
    DecodeContext,
    Decoded,
    Ignored,
    InboundRequest,
    Notice,
    Rejected,
    decode,
)
from transport.slack_errors import SlackError
from transport.slack_presence import Presence
from transport.slack_rooms import Rooms, RoomState
from transport.slack_rtm import PresenceEvent, RtmMessage
from transport.slack_socket import InboundEnvelope

__all__ = [
    "NOT_A_ROOM",
    "ONLY_MEMBERS",
    "Inbound",
    "InboundItem",
    "InboundStatistics",
    "from_envelope",
    "from_rtm",
]

_log = structlog.get_logger("transport.slack_inbound")

ONLY_MEMBERS = "Only room members can end the takeover."
NOT_A_ROOM = "`/end-takeover` works only in a takeover room."
ALREADY_ENDED = "This takeover has already ended."
CANNOT_CHECK = "Slack could not tell whether you are a member of this room; please try again."

Deliver = Callable[[SlackFact], Awaitable[None]]
Notify = Callable[[Notice], Awaitable[None]]
Claim = Callable[[InboundRequest], bool]
"""An edge handler (`add_handler`): True when it took the request (e.g. `app_home_opened`,
`/takeover-stats`); it must not wait, only queue its own work."""


@dataclass(frozen=True, slots=True)
class _Wake:
    """Wakes the pipeline to deliver released facts (carries no work itself)."""


_WAKE = _Wake()
InboundItem = InboundRequest | PresenceChanged | _Wake


@dataclass(frozen=True, slots=True)
class InboundStatistics:
    received: int
    delivered: int
    duplicates: int
    ignored: int
    rejected: int
    held: int


def from_envelope(envelope: InboundEnvelope) -> InboundRequest:
    """A Socket Mode envelope (already acked by the client) as an `InboundRequest`."""
    return InboundRequest(
        envelope.kind,
        envelope.payload,
        "socket",
        envelope.envelope_id,
        envelope.retry_attempt,
    )


def from_rtm(event: PresenceEvent | RtmMessage) -> InboundRequest:
    """An RTM event as an `InboundRequest` (decoded like any other)."""
    if isinstance(event, PresenceEvent):
        payload = {"type": "presence_change", "user": event.user_id, "presence": event.presence}
        return InboundRequest("rtm", payload, "rtm")
    return InboundRequest("rtm", event.payload, "rtm")


class _Recent:
    """The last `keep` keys seen."""

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._keys: OrderedDict[str, None] = OrderedDict()

    def seen(self, key: str) -> bool:
        """True when `key` was seen before; remembers it otherwise."""
        if key in self._keys:
            return True
        self._keys[key] = None
        if len(self._keys) > self._keep:
            self._keys.popitem(last=False)
        return False


class Inbound:
    def __init__(
        self,
        *,
        deliver: Deliver,
        rooms: Rooms,
        presence: Presence,
        notify: Notify,
        capacity: int = 10_000,
        remember: int = 10_000,
    ) -> None:
        self._deliver = deliver
        self._rooms = rooms
        self._presence = presence
        self._notify = notify
        self._send, self._receive = trio.open_memory_channel[InboundItem](capacity)
        self._events = _Recent(remember)
        self._messages = _Recent(remember)
        self._held: dict[str, list[SlackFact]] = {}
        self._released: deque[SlackFact] = deque()
        self._nursery: trio.Nursery | None = None
        self._received = self._delivered = self._duplicates = 0
        self._ignored = self._rejected = 0
        self._handlers: list[Claim] = []

    async def submit(self, item: InboundItem) -> None:
        """Queue one item (waits while the queue is full)."""
        await self._send.send(item)

    def submit_nowait(self, item: InboundItem) -> None:
        """Queue one item now; raises `trio.WouldBlock` when the queue is full."""
        self._send.send_nowait(item)

    def add_handler(self, claim: Claim) -> None:
        """Requests that are not for the domain (App Home, the stats command) go to `claim`
        first, in arrival order; a request it takes is not decoded here."""
        self._handlers.append(claim)

    def publish_nowait(self, fact: PresenceChanged) -> None:
        """A fact seen by the actor itself (a presence poll): delivered in turn, never waits."""
        self._released.append(fact)
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(trio.WouldBlock):  # a full queue wakes the pipeline anyway
            self._send.send_nowait(_WAKE)

    async def run(
        self,
        context: DecodeContext,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            async for item in self._receive:
                await self._give_released()
                if not isinstance(item, _Wake):
                    self._received += 1
                    await self._handle(item, context)

    def settle_room(self, room_id: str, ok: bool) -> None:
        """The room's opening ended: release its held facts (`ok`) or drop them. Never waits."""
        held = self._held.pop(room_id, [])
        if not ok:
            if held:
                _log.warning("room_facts_dropped", channel=room_id, count=len(held))
            return
        self._rooms.opened(room_id)
        if held:
            self._released.extend(held)
            self._wake()

    async def _give_released(self) -> None:
        while self._released:
            await self._give(self._released.popleft())

    async def _handle(self, item: InboundItem, context: DecodeContext) -> None:
        match item:
            case InboundRequest():
                await self._request(item, context)
            case PresenceChanged():
                await self._give(item)
            case _Wake():
                pass
            case _:
                assert_never(item)

    async def _request(self, request: InboundRequest, context: DecodeContext) -> None:
        for claim in self._handlers:
            try:
                if claim(request):
                    return
            except Exception:
                _log.exception("slack_inbound_handler_failed", kind=request.kind)
        result = decode(request, context)
        match result:
            case Rejected(reason, detail):
                self._rejected += 1
                _log.warning(
                    "slack_inbound_rejected",
                    reason=reason,
                    detail=detail,
                    kind=request.kind,
                    source=request.source,
                )
            case Ignored(reason, notice, event_id):
                self._ignored += 1
                _log.debug("slack_inbound_ignored", reason=reason, kind=request.kind)
                if notice is not None and not (event_id and self._events.seen(event_id)):
                    self._tell(notice)
            case Decoded(facts, event_id):
                if event_id and self._events.seen(event_id):
                    self._duplicates += 1
                    _log.info("slack_event_duplicate", event_id=event_id)
                    return
                for fact in facts:
                    await self._fact(fact)
            case _:
                assert_never(result)

    async def _fact(self, fact: SlackFact) -> None:
        match fact:
            case OfferAnswered():
                await self._give(fact)
            case PresenceChanged(agent_id, active):
                if self._presence.note(agent_id, active):
                    await self._give(fact)
            case RoomMessagePosted(room_id=room_id, message_id=message_id):
                if self._messages.seen(message_id):
                    self._duplicates += 1
                    return
                state = await self._rooms.state(room_id)
                if state is None or state == "closed":
                    self._ignored += 1
                    _log.debug("message_outside_rooms", channel=room_id, state=state)
                    return
                await self._to_room(room_id, fact, state)
            case EndTakeoverRequested(room_id, user_id):
                state = await self._may_end(room_id, user_id)
                if state is not None:
                    await self._to_room(room_id, fact, state)
            case _:
                assert_never(fact)

    async def _to_room(self, room_id: str, fact: SlackFact, state: RoomState) -> None:
        if state == "opening":
            self._held.setdefault(room_id, []).append(fact)
        else:
            await self._give(fact)

    async def _may_end(self, room_id: str, user_id: str) -> RoomState | None:
        """The room's state when `user_id` may end its takeover; else tells them why not."""
        state = await self._rooms.state(room_id)
        refusal: str | None = None
        if state is None:
            refusal = NOT_A_ROOM
        elif state == "closed":
            refusal = ALREADY_ENDED
        else:
            try:
                if not await self._rooms.is_member(room_id, user_id):
                    refusal = ONLY_MEMBERS
            except SlackError as e:
                _log.warning("room_membership_unknown", channel=room_id, error=str(e))
                refusal = CANNOT_CHECK
        if refusal is None:
            return state
        _log.info("end_takeover_refused", channel=room_id, user=user_id, reason=refusal)
        self._tell(Notice(room_id, user_id, refusal))
        return None

    def _tell(self, notice: Notice) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(self._notify_quietly, notice)

    async def _notify_quietly(self, notice: Notice) -> None:
        try:
            await self._notify(notice)
        except SlackError as e:
            _log.warning("notice_failed", user=notice.user_id, error=str(e))

    async def _give(self, fact: SlackFact) -> None:
        try:
            await self._deliver(fact)
        except Exception:
            _log.exception("slack_fact_delivery_failed", fact=type(fact).__name__)
            return
        self._delivered += 1

    def statistics(self) -> InboundStatistics:
        return InboundStatistics(
            received=self._received,
            delivered=self._delivered,
            duplicates=self._duplicates,
            ignored=self._ignored,
            rejected=self._rejected,
            held=sum(len(h) for h in self._held.values()) + len(self._released),
        )
