"""The Slack actor: executes the domain's Slack commands and feeds Slack's traffic back to it.

Owns `SlackActor`, the one owner of the app's Slack I/O. Accepts the `actors.ports.SlackCommand`
union on the mailbox given to `run`; answers every request (`ConfirmPresence`,
`FetchAgentProfile`, `OpenRoom`) with its value or its error, never leaving one unanswered.

Commands run concurrently through `Lanes`, so one slow call never holds up the others, but in
order where order matters: the commands of one offer (post, then update, then a too-late
notice), of one room (relays in the order sent, then the close) and of one takeover's opening.
An offer's DM update is queued by its lane and made by `Offers.run_updates`, outside the lanes
(chat.update's Tier 3 would otherwise fill them under a rush of offers).
Offer DMs live in `slack_offers`, rooms in `slack_rooms`, presence and profiles in
`slack_presence`, leads (posted in `slack.leads_channel`) in `slack_leads`.

Inbound, by `slack.mode`: `emulator` and `socket` hold a Socket Mode connection (the app token);
`rtm` an RTM connection for messages and `presence_change`, plus Socket Mode for clicks and
commands when an app token is set; `events` receives Slack's signed HTTP requests on the routes
of `http_routes()`, which the composition root mounts on the public HTTP server. Everything
inbound goes through one `Inbound` pipeline that delivers facts with `domain_deliver` from its
own task. Outside RTM, presence is polled within users.getPresence's tier.

    slack = SlackActor(web, settings.slack, domain_deliver=domain.deliver, agents=pool)
    await nursery.start(slack.run, command_receive_channel)

`run` reports itself started once it knows who the app is (auth.test) and its inbound
connection is up. When the command channel closes, it finishes the commands it holds, then
stops.
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar, assert_never

import structlog
import trio
from starlette.routing import BaseRoute

from actors.histogram import RELAY_BOUNDS, Histogram, HistogramSnapshot
from actors.ports import (
    CloseRoom,
    ConfirmPresence,
    FetchAgentProfile,
    FetchRoomMessages,
    OpenRoom,
    PostLead,
    PostOffer,
    PresenceChanged,
    RelayToRoom,
    ResolveOffer,
    SlackCommand,
    SlackFact,
    TellTooLate,
)
from actors.runtime import ActorStopped, Reply
from actors.settings import SlackSettings
from transport.slack_backoff import RandomSource
from transport.slack_decode import DecodeContext, Notice
from transport.slack_errors import SlackApiError
from transport.slack_http import slack_routes
from transport.slack_inbound import (
    Inbound,
    InboundStatistics,
    from_envelope,
    from_rtm,
)
from transport.slack_lanes import Lanes, LanesStatistics
from transport.slack_leads import Leads
from transport.slack_offers import Offers
from transport.slack_presence import Presence, PresenceStatistics, Profiles
from transport.slack_relay import RoomRelay
from transport.slack_room_lookup import people_messages
from transport.slack_rooms import Rooms
from transport.slack_rtm import RtmClient, RtmConnected, RtmEvent
from transport.slack_socket import InboundEnvelope, SocketModeClient
from transport.slack_web import SlackWebClient
from transport.slack_ws import WsPolicy

__all__ = ["SlackActor", "SlackActorStatistics"]

_log = structlog.get_logger("transport.slack_actor")

T = TypeVar("T")
UPDATES_DRAIN_S = 10.0  # offer DM updates still queued at a stop get this long
Deliver = Callable[[SlackFact], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SlackActorStatistics:
    """`connected`: see `SlackActor.connected`; `relay_to_room`: seconds from a customer's line
    (its `at`) to its post in the room."""

    commands: int
    lanes: LanesStatistics
    inbound: InboundStatistics
    presence: PresenceStatistics
    connected: bool
    relay_to_room: HistogramSnapshot


class SlackActor:
    """One per daemon; see the module docstring for the composition."""

    def __init__(
        self,
        web: SlackWebClient,
        settings: SlackSettings,
        *,
        domain_deliver: Deliver,
        agents: Iterable[str] = (),
        presence_poll_interval_s: float = 60.0,
        presence_min_gap_s: float = 1.5,
        ws_policy: WsPolicy | None = None,
        random: RandomSource = _random.random,
        post_pause_s: float = 2.0,
        max_commands: int = 1_000,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._web = web
        self._settings = settings
        self._ws_policy = ws_policy
        self._random = random
        self._max_commands = max_commands
        self.profiles = Profiles(web)
        self.rooms = Rooms(
            web,
            prefix=settings.room_prefix,
            avatars=self.profiles.avatars,
            pause_s=post_pause_s,
            wall_clock=wall_clock,
        )
        self.relay = RoomRelay(web, self.rooms, self.profiles.avatars, on_posted=self._relay_posted)
        self.offers = Offers(web, room_link=self.rooms.link)
        self.leads = Leads(web, settings.leads_channel, pause_s=post_pause_s, wall_clock=wall_clock)
        self.presence = Presence(
            web,
            self._publish_presence,
            agents=agents,
            interval_s=presence_poll_interval_s,
            min_gap_s=presence_min_gap_s,
        )
        self.inbound = Inbound(
            deliver=domain_deliver, rooms=self.rooms, presence=self.presence, notify=self._notify
        )
        self.identity: DecodeContext | None = None
        self._wall_clock = wall_clock
        self._links_up: list[Callable[[], bool]] = []
        self._relay_to_room = Histogram(RELAY_BOUNDS)
        self._lanes: Lanes | None = None
        self._nursery: trio.Nursery | None = None
        self._commands = 0

    # --- life ---------------------------------------------------------------------------------

    async def run(
        self,
        commands: trio.MemoryReceiveChannel[SlackCommand],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self.identity = await self._whoami()
                await nursery.start(self.inbound.run, self.identity)
                await self._connect(nursery)
                lanes = self._lanes = Lanes(nursery, limit=self._max_commands)
                nursery.start_soon(self.offers.run_updates)
                nursery.start_soon(self.profiles.warm, self.presence.agents)
                _log.info(
                    "slack_actor_started",
                    mode=self._settings.mode,
                    bot_user=self.identity.bot_user_id,
                    agents=len(self.presence.agents),
                )
                task_status.started()
                async for command in commands:
                    self._commands += 1
                    await self._execute(lanes, command)
                await lanes.wait_idle()
                with trio.move_on_after(UPDATES_DRAIN_S):  # a restart resends the rest
                    await self.offers.wait_updated()
                _log.info(
                    "slack_actor_stopping",
                    commands=self._commands,
                    offer_updates_left=self.offers.updates_pending,
                )
                nursery.cancel_scope.cancel()
        finally:
            self._fail_queued(commands)

    def _fail_queued(self, commands: trio.MemoryReceiveChannel[SlackCommand]) -> None:
        while True:
            try:
                command = commands.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return
            reply = getattr(command, "reply", None)
            if isinstance(reply, Reply):
                reply.fail(ActorStopped("the Slack actor stopped"))

    async def _whoami(self) -> DecodeContext:
        answer = await self._web.call("auth.test")
        user_id, bot_id = answer.get("user_id"), answer.get("bot_id")
        if not isinstance(user_id, str) or not user_id:
            raise SlackApiError("auth.test", "no_user_id", answer)
        return DecodeContext(user_id, bot_id if isinstance(bot_id, str) else "")

    async def _connect(self, nursery: trio.Nursery) -> None:
        mode = self._settings.mode
        match mode:
            case "emulator" | "socket":
                await nursery.start(self._socket_mode().run)
                nursery.start_soon(partial(self.presence.poll))
            case "rtm":
                if self._settings.app_token:
                    await nursery.start(self._socket_mode().run)
                else:
                    _log.warning(
                        "slack_rtm_without_app_token",
                        detail="clicks and /end-takeover arrive only through http_routes()",
                        signing_secret=bool(self._settings.signing_secret),
                    )
                await nursery.start(self._rtm().run)
            case "events":
                nursery.start_soon(partial(self.presence.poll))
            case _:
                assert_never(mode)

    def _socket_mode(self) -> SocketModeClient:
        client = SocketModeClient(
            self._web.with_token(self._settings.app_token),
            self._on_envelope,
            policy=self._ws_policy,
            random=self._random,
        )
        self._links_up.append(lambda: client.statistics().links.connected)
        return client

    def _rtm(self) -> RtmClient:
        client = RtmClient(
            self._web,
            self._on_rtm,
            presence_ids=self.presence.agents,
            policy=self._ws_policy,
            random=self._random,
        )
        self._links_up.append(lambda: client.statistics().links.connected)
        return client

    async def _on_envelope(self, envelope: InboundEnvelope) -> None:
        await self.inbound.submit(from_envelope(envelope))

    async def _on_rtm(self, event: RtmEvent) -> None:
        if isinstance(event, RtmConnected):
            # presence may have changed while no link was up: read the pool once more
            assert self._nursery is not None
            self._nursery.start_soon(partial(self.presence.poll, once=True))
            return
        await self.inbound.submit(from_rtm(event))

    def http_routes(self, *, wall_clock: Callable[[], float] = time.time) -> list[BaseRoute]:
        """The Events API routes (`/slack/events`, `/slack/interactivity`, `/slack/commands`),
        checked with `slack.signing_secret`; mount them on the public HTTP server."""
        return slack_routes(self._settings.signing_secret, self.inbound, wall_clock=wall_clock)

    async def wait_commands_finished(self, count: int) -> None:
        """Wait until `count` commands in all have been executed (successfully or not)."""
        if self._lanes is None:
            raise RuntimeError("the Slack actor is not running")
        await self._lanes.wait_finished(count)
        await self.offers.wait_updated()  # a ResolveOffer is done once its DM is updated

    # --- commands -----------------------------------------------------------------------------

    async def _execute(self, lanes: Lanes, command: SlackCommand) -> None:
        match command:
            case ConfirmPresence(agent_id, reply):
                job = partial(self._answer, reply, partial(self.presence.confirm, agent_id))
                await lanes.submit(None, "confirm_presence", job)
            case FetchAgentProfile(agent_id, reply):
                job = partial(self._answer, reply, partial(self.profiles.fetch, agent_id))
                await lanes.submit(None, "fetch_agent_profile", job)
            case PostOffer(offer):
                await lanes.submit(
                    f"offer:{offer.offer_id}", "post_offer", partial(self.offers.post, offer)
                )
            case ResolveOffer(offer_id=offer_id):
                # after the offer's post; the update itself waits for chat.update's tier
                # outside the lanes, so a backlog of them holds up no other command
                job = partial(self._resolve_soon, command)
                await lanes.submit(f"offer:{offer_id}", "resolve_offer", job)
            case TellTooLate(offer_id=offer_id):
                job = partial(self.offers.too_late, command)
                await lanes.submit(f"offer:{offer_id}", "tell_too_late", job)
            case OpenRoom(takeover_id=takeover_id):
                job = partial(self._open_room, command)
                await lanes.submit(f"takeover:{takeover_id}", "open_room", job)
            case RelayToRoom(room_id=room_id):
                if self.relay.queue(command):
                    job = partial(self.relay.drain, room_id)
                    await lanes.submit(f"room:{room_id}", "relay_to_room", job)
                else:  # the room's job, queued or running, posts it too
                    lanes.absorbed()
            case CloseRoom(room_id=room_id):
                job = partial(self.rooms.close, command)
                await lanes.submit(f"room:{room_id}", "close_room", job)
            case PostLead():
                # one lane for all leads: they appear in the channel in the order left
                await lanes.submit("leads", "post_lead", partial(self.leads.post, command))
            case FetchRoomMessages(room_id, oldest, reply):
                assert self.identity is not None
                fetch = partial(people_messages, self._web, room_id, oldest, self.identity)
                job = partial(self._answer, reply, fetch)  # reading needs no place in line
                await lanes.submit(None, "fetch_room_messages", job)
            case _:
                assert_never(command)

    async def _resolve_soon(self, command: ResolveOffer) -> None:
        self.offers.resolve_soon(command)

    async def _answer(self, reply: Reply[T], work: Callable[[], Awaitable[T]]) -> None:
        try:
            value = await work()
        except Exception as e:
            reply.fail(e)
            _log.warning("slack_request_failed", error=repr(e))
            return
        except BaseException:
            reply.fail(ActorStopped("the Slack actor stopped"))
            raise
        reply.send(value)

    def _relay_posted(self, command: RelayToRoom) -> None:
        if not command.resent:  # a line sent again after a restart is not a latency sample
            self._relay_to_room.observe(self._wall_clock() - command.line.at)

    async def _open_room(self, command: OpenRoom) -> None:
        await self._answer(command.reply, partial(self.rooms.open, command))
        room_id = self.rooms.room_of(command.takeover_id)
        if room_id is not None:
            room = self.rooms.get(room_id)
            ok = room is not None and room.state == "opening"
            self.inbound.settle_room(room_id, ok)

    # --- helpers for the inbound side ---------------------------------------------------------

    async def _publish_presence(self, fact: PresenceChanged) -> None:
        self.inbound.publish_nowait(fact)

    async def _notify(self, notice: Notice) -> None:
        """Tell one user privately; a DM when Slack refuses the ephemeral message."""
        try:
            await self._web.call(
                "chat.postEphemeral",
                channel=notice.channel_id,
                user=notice.user_id,
                text=notice.text,
            )
        except SlackApiError as e:
            _log.info("ephemeral_refused", user=notice.user_id, error=e.error_code)
            channel = await self.offers.dm_channel(notice.user_id)
            await self._web.post_message(channel, text=notice.text)

    def connected(self) -> bool:
        """Slack is reachable: the app knows who it is (auth.test) and every inbound link
        (Socket Mode, RTM) is up now. In events mode Slack comes to us: identity is enough."""
        return self.identity is not None and all(up() for up in self._links_up)

    def statistics(self) -> SlackActorStatistics:
        lanes = self._lanes.statistics() if self._lanes else LanesStatistics(0, 0, 0, 0)
        return SlackActorStatistics(
            commands=self._commands,
            lanes=lanes,
            inbound=self.inbound.statistics(),
            presence=self.presence.statistics(),
            connected=self.connected(),
            relay_to_room=self._relay_to_room.snapshot(),
        )
