"""Stats where agents and managers look in Slack: App Home tabs, `/takeover-stats`, "I'm back".

Owns `SlackHome`, a service beside the Slack actor, and the edge decoding of the requests it
takes from the inbound pipeline (`claim`, registered with `Inbound.add_handler`): the
`app_home_opened` event, the `/takeover-stats` slash command and the `agent_available` button
(in the Home tab or in the away notice). Those never reach the domain's decoder.

- Home tabs: every `refresh_s` seconds the domain's stats are read and each agent whose own
  stats changed since their last publish gets a new Home view (`views.publish`, Tier 4: with
  the default 10 s at most one publish per agent per 10 s, 6 a minute each). Opening the tab
  publishes at once when the view shown would be stale (or was never published this run).
- `/takeover-stats`: the team table, as an ephemeral message to whoever ran it (a DM when Slack
  refuses the ephemeral, e.g. in a channel the app is not in).
- `agent_available`: presence is checked with users.getPresence; active, the agent is given
  back to routing (`PresenceChanged(active)` to the domain), away, they are told to set
  themselves active first.
- `tell_away(agent, misses)`: the DM of an agent the hygiene rules set away.

Requests queue in a bounded mailbox (`claim` never waits; a full one drops and logs) and are
handled in order by `run`; Slack errors are logged, never raised.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, assert_never

import structlog
import trio

from actors.ports import AgentProfile, PresenceChanged, SlackFact
from actors.stats import AgentStats, DomainStats
from transport.slack_decode import InboundRequest
from transport.slack_errors import SlackApiError, SlackError
from transport.slack_home_views import (
    ACTION_AVAILABLE,
    away_notice,
    home_view,
    not_an_agent_view,
    team_blocks,
)
from transport.slack_web import SlackWebClient

__all__ = [
    "STATS_COMMAND",
    "AvailableAsked",
    "HomeMsg",
    "HomeOpened",
    "SlackHome",
    "SlackHomeStatistics",
    "StatsAsked",
    "TellAway",
    "decode_app_request",
]

_log = structlog.get_logger("transport.slack_home")

STATS_COMMAND = "/takeover-stats"
BACK_TEXT = "You are available for chats again."
STILL_AWAY_TEXT = "Slack shows you as away. Set yourself active in Slack first, then try again."
NOT_AGENT_TEXT = "You are not in takeover's agent pool."
UNKNOWN_TEXT = "Slack could not tell whether you are active; please try again."


@dataclass(frozen=True, slots=True)
class HomeOpened:
    user_id: str


@dataclass(frozen=True, slots=True)
class StatsAsked:
    user_id: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class AvailableAsked:
    user_id: str


@dataclass(frozen=True, slots=True)
class TellAway:
    agent_id: str
    misses: int


HomeMsg = HomeOpened | StatsAsked | AvailableAsked | TellAway


@dataclass(frozen=True, slots=True)
class SlackHomeStatistics:
    published: int
    commands: int
    back: int
    dropped: int
    failures: int


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def decode_app_request(request: InboundRequest) -> HomeOpened | StatsAsked | AvailableAsked | bool:
    """The request as one of ours; True for one to swallow (another Home tab opened), False
    when it is not ours at all. Pure; never raises."""
    payload = _map(request.payload)
    match request.kind:
        case "events_api":
            event = _map(payload.get("event"))
            if payload.get("type") != "event_callback" or event.get("type") != "app_home_opened":
                return False
            user = _str(event.get("user"))
            if user is None:
                return False  # the decoder rejects and logs it
            return HomeOpened(user) if event.get("tab", "home") == "home" else True
        case "slash_commands":
            user, channel = _str(payload.get("user_id")), _str(payload.get("channel_id"))
            if payload.get("command") != STATS_COMMAND or user is None or channel is None:
                return False
            return StatsAsked(user, channel)
        case "interactive":
            if payload.get("type") != "block_actions":
                return False
            actions = payload.get("actions")
            user = _str(_map(payload.get("user")).get("id"))
            if not isinstance(actions, list) or user is None:
                return False
            if any(_map(a).get("action_id") == ACTION_AVAILABLE for a in actions):
                return AvailableAsked(user)
            return False
        case _:
            return False


class SlackHome:
    def __init__(
        self,
        web: SlackWebClient,
        *,
        stats: Callable[[], DomainStats],
        deliver: Callable[[SlackFact], Awaitable[None]],
        presence: Callable[[str], Awaitable[bool]],
        dm_channel: Callable[[str], Awaitable[str]],
        agents: Iterable[str],
        profile: Callable[[str], Awaitable[AgentProfile]] | None = None,
        refresh_s: float = 10.0,
        wall_clock: Callable[[], float] = time.time,
        capacity: int = 1_000,
    ) -> None:
        if refresh_s <= 0:
            raise ValueError("refresh_s must be positive")
        self._web = web
        self._stats = stats
        self._deliver = deliver
        self._presence = presence
        self._dm_channel = dm_channel
        self._profile = profile
        self._names: dict[str, str] = {}  # agent id -> Slack display name, fetched once
        self._agents = frozenset(agents)
        self._refresh_s = refresh_s
        self._wall_clock = wall_clock
        self._send, self._receive = trio.open_memory_channel[HomeMsg](capacity)
        self._shown: dict[str, AgentStats | None] = {}  # what each Home shows now
        self._published = self._commands = self._back = self._dropped = self._failures = 0

    # --- the inbound side (never waits) -------------------------------------------------------

    def claim(self, request: InboundRequest) -> bool:
        """`Inbound.add_handler` hook: True when the request is ours (queued or swallowed)."""
        decoded = decode_app_request(request)
        if isinstance(decoded, bool):
            return decoded
        self._queue(decoded)
        return True

    def tell_away(self, agent_id: str, misses: int) -> None:
        """Queue the away notice of an agent set away after `misses` missed offers."""
        self._queue(TellAway(agent_id, misses))

    def _queue(self, message: HomeMsg) -> None:
        try:
            self._send.send_nowait(message)
        except trio.WouldBlock:
            self._dropped += 1
            _log.warning("slack_home_request_dropped", request=type(message).__name__)

    # --- life ---------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._refresh_loop)
            task_status.started()
            async for message in self._receive:
                await self._handle(message)

    async def _refresh_loop(self) -> None:
        while True:
            await self.refresh()
            await trio.sleep(self._refresh_s)

    async def refresh(self) -> int:
        """Publish the Home of each agent whose stats changed; returns how many were."""
        count = 0
        for agent in self._stats().agents:
            if agent.id in self._agents and self._shown.get(agent.id) != agent:
                count += await self._publish(agent.id, agent)
        return count

    async def _handle(self, message: HomeMsg) -> None:
        match message:
            case HomeOpened(user_id):
                agent = self._agent(user_id)
                if user_id not in self._shown or self._shown[user_id] != agent:
                    await self._publish(user_id, agent)
            case StatsAsked(user_id, channel_id):
                self._commands += 1
                agents = self._stats().agents
                text, blocks = team_blocks(agents, await self._names_of(a.id for a in agents))
                await self._ephemeral(channel_id, user_id, text, blocks)
            case AvailableAsked(user_id):
                await self._available(user_id)
            case TellAway(agent_id, misses):
                text, blocks = away_notice(misses)
                await self._dm(agent_id, text, blocks)
                await self._publish(agent_id, self._agent(agent_id))
            case _:
                assert_never(message)

    async def _names_of(self, agent_ids: Iterable[str]) -> Mapping[str, str]:
        """Slack names of the agents (users.info once each; an agent Slack does not answer
        for is shown by id and asked again next time)."""
        if self._profile is not None:
            for agent_id in agent_ids:
                if agent_id in self._names:
                    continue
                try:
                    p = await self._profile(agent_id)
                except SlackError as e:
                    _log.info("agent_name_unknown", agent=agent_id, error=str(e))
                    continue
                self._names[agent_id] = p.display_name or p.real_name or agent_id
        return self._names

    def _agent(self, user_id: str) -> AgentStats | None:
        if user_id not in self._agents:
            return None
        return next((a for a in self._stats().agents if a.id == user_id), None)

    async def _available(self, user_id: str) -> None:
        if user_id not in self._agents:
            await self._dm(user_id, NOT_AGENT_TEXT)
            return
        try:
            active = await self._presence(user_id)
        except SlackError as e:
            _log.warning("agent_presence_unknown", agent=user_id, error=str(e))
            await self._dm(user_id, UNKNOWN_TEXT)
            return
        if not active:
            await self._dm(user_id, STILL_AWAY_TEXT)
            return
        await self._deliver(PresenceChanged(user_id, True))
        self._back += 1
        _log.info("agent_back", agent=user_id)
        await self._dm(user_id, BACK_TEXT)
        await self._publish(user_id, self._agent(user_id))

    # --- Slack calls ----------------------------------------------------------------------------

    async def _publish(self, user_id: str, agent: AgentStats | None) -> int:
        now = self._wall_clock()
        view = home_view(agent, updated_at=now) if agent else not_an_agent_view(updated_at=now)
        try:
            await self._web.call("views.publish", user_id=user_id, view=view)
        except SlackError as e:
            self._failures += 1
            _log.warning("home_publish_failed", user=user_id, error=str(e))
            return 0
        self._shown[user_id] = agent
        self._published += 1
        return 1

    async def _ephemeral(
        self, channel: str, user_id: str, text: str, blocks: list[dict[str, Any]]
    ) -> None:
        try:
            await self._web.call(
                "chat.postEphemeral", channel=channel, user=user_id, text=text, blocks=blocks
            )
        except SlackApiError as e:
            _log.info("ephemeral_refused", user=user_id, error=e.error_code)
            await self._dm(user_id, text, blocks)
        except SlackError as e:
            self._failures += 1
            _log.warning("stats_answer_failed", user=user_id, error=str(e))

    async def _dm(
        self, user_id: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        extra: dict[str, Any] = {"blocks": blocks} if blocks else {}
        try:
            channel = await self._dm_channel(user_id)
            await self._web.post_message(channel, text=text, **extra)
        except SlackError as e:
            self._failures += 1
            _log.warning("home_dm_failed", user=user_id, error=str(e))

    def statistics(self) -> SlackHomeStatistics:
        return SlackHomeStatistics(
            self._published, self._commands, self._back, self._dropped, self._failures
        )
