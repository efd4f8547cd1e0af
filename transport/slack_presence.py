"""Agents as Slack sees them: presence (confirmed and polled) and profiles.

Owns:
- `Presence`: `confirm(agent)` asks users.getPresence once, just before an offer. Its tier
  (Tier 3, about 50 calls a minute for the whole pool) is shared by every offer, so a rush of
  offers saturates it: when the tier would not pass the call within `confirm_wait_s` (asked
  without waiting, `SlackWebClient.rate_eta`), or Slack has not answered within
  `confirm_budget_s`, the presence last seen (a poll, RTM, an earlier confirmation) answers at
  once instead of queueing. Concurrent confirmations of one agent share one call. Only an agent
  never seen at all, whom Slack cannot answer for, is unconfirmed (`SlackTimeout`).
  `poll()` walks the agent pool with users.getPresence, one agent every
  `max(interval_s / pool, min_gap_s)` seconds, so the pool stays under `60 / min_gap_s` calls a
  minute; it yields the tier to confirmations: it polls only when no confirmation was asked
  within the last `confirm_budget_s` and the tier would pass its call at once, so a poll never
  queues ahead of a confirmation. Every answer that differs from the last one known (and the
  first one) is published as `PresenceChanged`. In RTM mode `presence_change` events are noted
  (`note`) by the inbound side.
- `Profiles`: users.info -> `AgentProfile` (display name, real name, title, avatar), kept for
  `fresh_s` (an agent accepting several chats costs one users.info, Tier 4), concurrent fetches
  of one agent sharing one call, a kept one answering when the tier is busy or Slack fails;
  `warm(agents)` keeps the pool's profiles from users.list at start (a rush of accepts would
  otherwise queue 100 users.info calls); and the avatars the room posts use as `icon_url`.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
import trio

from actors.ports import AgentProfile, PresenceChanged
from transport.slack_errors import SlackApiError, SlackError, SlackRateLimited, SlackTimeout
from transport.slack_web import SlackWebClient

__all__ = ["Presence", "PresenceStatistics", "Profiles"]

_log = structlog.get_logger("transport.slack_presence")

Publish = Callable[[PresenceChanged], Awaitable[None]]
T = TypeVar("T")
_GET_PRESENCE = "users.getPresence"
_WARN_EVERY_S = 60.0
_AVATAR_KEYS = ("image_192", "image_512", "image_72", "image_48", "image_original")


@dataclass(frozen=True, slots=True)
class PresenceStatistics:
    """`confirms_shared`: confirmations that joined another's call in flight;
    `confirms_from_last_seen`: answered from the presence last seen (the tier busy, or Slack
    slow); `polls_deferred`: times the poll yielded the tier to confirmations."""

    polls: int
    poll_failures: int
    confirms: int
    confirms_from_last_seen: int
    changes: int
    known: Mapping[str, bool]
    confirms_shared: int = 0
    polls_deferred: int = 0


def _slack_answered(error: SlackError | None) -> bool:
    """Slack answered with an error about the request itself (not a 429 left over)."""
    return isinstance(error, SlackApiError) and not isinstance(error, SlackRateLimited)


class _Flight(Generic[T]):
    """One call in flight that others may wait for: its value, its error, or neither (too slow)."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.value: T | None = None
        self.error: SlackError | None = None


class Presence:
    """The agents' presence as last seen; publishes every change."""

    def __init__(
        self,
        web: SlackWebClient,
        publish: Publish,
        *,
        agents: Iterable[str] = (),
        interval_s: float = 60.0,
        min_gap_s: float = 1.5,
        confirm_budget_s: float = 5.0,
        confirm_wait_s: float = 0.5,
    ) -> None:
        if interval_s <= 0 or min_gap_s < 0 or confirm_budget_s <= 0 or confirm_wait_s < 0:
            raise ValueError(
                "interval_s and confirm_budget_s must be positive, "
                "min_gap_s and confirm_wait_s not negative"
            )
        self._web = web
        self._publish = publish
        self.agents: tuple[str, ...] = tuple(dict.fromkeys(agents))
        self._interval = interval_s
        self._min_gap = min_gap_s
        self._confirm_budget = confirm_budget_s
        self._confirm_wait = confirm_wait_s
        self._known: dict[str, bool] = {}
        # agents the domain may have counted away (a failed confirmation): their next presence
        # seen is published even when unchanged
        self._stale: set[str] = set()
        self._flights: dict[str, _Flight[bool]] = {}
        self._last_confirm = -math.inf
        self._warned_at = -math.inf
        self._polls = self._failures = self._confirms = self._changes = 0
        self._from_last_seen = self._shared = self._deferred = 0

    @property
    def gap_s(self) -> float:
        """Seconds between two polls of the steady rounds."""
        return max(self._interval / max(1, len(self.agents)), self._min_gap)

    async def fetch(self, agent_id: str, *, publish: bool = False) -> bool:
        """users.getPresence: True when the agent is active (the green dot); `publish`: publish
        the answer even when unchanged."""
        answer = await self._web.call(_GET_PRESENCE, user=agent_id)
        active = answer.get("presence") == "active"
        await self.observe(agent_id, active, publish=publish)
        return active

    async def confirm(self, agent_id: str) -> bool:
        """The check just before an offer; raises `SlackError` when Slack cannot tell.

        Its answer is published even when unchanged, and after a failure the next presence
        seen is: the domain counts an agent whose confirmation failed or came too late as away,
        and would otherwise never hear that they are still active.

        Never waits on a saturated tier when something was seen before (see the module
        docstring), and never forgets what was seen: a confirmation only adds to it. When Slack
        cannot answer (slow, unreachable, still rate limited) what was seen answers; when it
        answers with an error (e.g. ``user_not_found``), that error is raised."""
        self._confirms += 1
        self._last_confirm = trio.current_time()
        flight = self._flights.get(agent_id)
        if flight is not None:
            self._shared += 1
            await flight.done.wait()
        else:
            last = self._known.get(agent_id)
            if last is not None and self._web.rate_eta(_GET_PRESENCE) > self._confirm_wait:
                return await self._answer_last_seen(agent_id, last, "tier_busy")
            flight = await self._fly(agent_id)
        if flight.value is not None:
            return flight.value
        error = flight.error
        last = self._known.get(agent_id)
        if last is None or _slack_answered(error):
            self._stale.add(agent_id)
            if error is not None:
                raise error
            raise SlackTimeout(_GET_PRESENCE, f"no answer within {self._confirm_budget}s")
        return await self._answer_last_seen(agent_id, last, "slow" if error is None else "failed")

    async def _fly(self, agent_id: str) -> _Flight[bool]:
        flight = self._flights[agent_id] = _Flight[bool]()
        try:
            with trio.move_on_after(self._confirm_budget):
                flight.value = await self.fetch(agent_id, publish=True)
        except SlackError as e:
            flight.error = e
        finally:
            del self._flights[agent_id]
            flight.done.set()
        return flight

    async def _answer_last_seen(self, agent_id: str, last: bool, why: str) -> bool:
        self._from_last_seen += 1
        _log.debug("presence_confirmed_from_last_seen", agent=agent_id, active=last, why=why)
        now = trio.current_time()
        if now - self._warned_at >= _WARN_EVERY_S:  # an operator should know, once a minute
            self._warned_at = now
            _log.warning(
                "presence_confirmed_from_last_seen",
                why=why,
                confirms=self._confirms,
                from_last_seen=self._from_last_seen,
                shared=self._shared,
            )
        await self.observe(agent_id, last, publish=True)
        return last

    def note(self, agent_id: str, active: bool) -> bool:
        """Remember a presence seen anywhere; True when it is news (changed, the first, or owed
        to a domain that may have counted the agent away)."""
        if self._known.get(agent_id) == active and agent_id not in self._stale:
            return False
        if self._known.get(agent_id) != active:
            self._known[agent_id] = active
            self._changes += 1
        self._stale.discard(agent_id)
        return True

    async def observe(self, agent_id: str, active: bool, *, publish: bool = False) -> None:
        """A presence seen by a poll or a confirmation: published when it is news (`publish`:
        always)."""
        if self.note(agent_id, active) or publish:
            await self._publish(PresenceChanged(agent_id, active))

    async def poll(
        self, *, once: bool = False, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Poll the pool forever (`once`: one round, as RTM mode does at start)."""
        task_status.started()
        if not self.agents:
            return
        gap = self._min_gap  # the first round learns everyone's presence quickly
        while True:
            for agent_id in self.agents:
                await self._wait_poll_turn()
                await self._poll_one(agent_id)
                await trio.sleep(gap)
            if once:
                return
            gap = self.gap_s

    async def _wait_poll_turn(self) -> None:
        """Yield the tier to confirmations: wait until none was asked for `confirm_budget_s`
        (which covers any still in flight) and the tier passes a call at once."""
        deferred = False
        while True:
            now = trio.current_time()
            quiet = self._last_confirm + self._confirm_budget
            wake = max(quiet, now + self._web.rate_eta(_GET_PRESENCE))
            if wake <= now:
                return
            if not deferred:
                deferred = True
                self._deferred += 1
            await trio.sleep_until(wake)

    async def _poll_one(self, agent_id: str) -> None:
        self._polls += 1
        try:
            await self.fetch(agent_id)
        except SlackError as e:
            self._failures += 1
            _log.warning("presence_poll_failed", agent=agent_id, error=str(e))

    def statistics(self) -> PresenceStatistics:
        return PresenceStatistics(
            polls=self._polls,
            poll_failures=self._failures,
            confirms=self._confirms,
            confirms_from_last_seen=self._from_last_seen,
            changes=self._changes,
            known=dict(self._known),
            confirms_shared=self._shared,
            polls_deferred=self._deferred,
        )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class Profiles:
    """users.info for agents, kept `fresh_s`; remembers each agent's avatar for the room posts."""

    def __init__(self, web: SlackWebClient, *, fresh_s: float = 600.0, wait_s: float = 1.0) -> None:
        if fresh_s < 0 or wait_s < 0:
            raise ValueError("fresh_s and wait_s must not be negative")
        self._web = web
        self._fresh = fresh_s
        self._wait = wait_s
        self.avatars: dict[str, str] = {}
        self._kept: dict[str, tuple[float, AgentProfile]] = {}
        self._flights: dict[str, _Flight[AgentProfile]] = {}

    async def warm(self, agents: Iterable[str], *, max_pages: int = 50) -> int:
        """Keep the profiles of `agents` from users.list (Tier 2, 200 people a call) instead of
        one users.info each when they first accept; returns how many were kept."""
        wanted = set(agents) - self._kept.keys()
        cursor, found = "", 0
        for _ in range(max_pages):
            if not wanted:
                break
            try:
                page = await self._web.call("users.list", limit=200, cursor=cursor or None)
            except SlackError as e:
                _log.warning("agent_profiles_not_warmed", error=str(e), kept=found)
                break
            for user in page.get("members") or ():
                agent_id = user.get("id") if isinstance(user, dict) else None
                if isinstance(agent_id, str) and agent_id in wanted:
                    wanted.discard(agent_id)
                    self._kept[agent_id] = (trio.current_time(), self._profile(agent_id, user))
                    found += 1
            meta = page.get("response_metadata")
            cursor = _text(meta.get("next_cursor")) if isinstance(meta, dict) else ""
            if not cursor:
                break
        return found

    async def fetch(self, agent_id: str) -> AgentProfile:
        """The agent's profile: kept if fetched within `fresh_s`, else users.info (shared with
        a fetch of the same agent in flight); a kept one, however old, when users.info's tier
        would not pass the call within `wait_s` or Slack fails."""
        kept = self._kept.get(agent_id)
        if kept is not None and (
            trio.current_time() - kept[0] < self._fresh
            or self._web.rate_eta("users.info") > self._wait
        ):
            return kept[1]
        flight = self._flights.get(agent_id)
        if flight is not None:
            await flight.done.wait()
        else:
            flight = self._flights[agent_id] = _Flight[AgentProfile]()
            try:
                flight.value = await self._users_info(agent_id)
                self._kept[agent_id] = (trio.current_time(), flight.value)
            except SlackError as e:
                flight.error = e
            finally:
                del self._flights[agent_id]
                flight.done.set()
        if flight.value is not None:
            return flight.value
        if kept is not None:
            _log.info("agent_profile_kept", agent=agent_id, error=str(flight.error))
            return kept[1]
        if flight.error is not None:
            raise flight.error
        raise SlackTimeout("users.info", "the fetch this one waited for was cancelled")

    async def _users_info(self, agent_id: str) -> AgentProfile:
        answer = await self._web.call("users.info", user=agent_id)
        return self._profile(agent_id, answer.get("user"))

    def _profile(self, agent_id: str, user: Any) -> AgentProfile:
        user = user if isinstance(user, dict) else {}
        profile = user.get("profile")
        profile = profile if isinstance(profile, dict) else {}
        real_name = _text(profile.get("real_name")) or _text(user.get("real_name"))
        display = _text(profile.get("display_name")) or real_name or _text(user.get("name"))
        avatar = next((_text(profile[k]) for k in _AVATAR_KEYS if _text(profile.get(k))), "")
        if avatar:
            self.avatars[agent_id] = avatar
        return AgentProfile(
            id=agent_id,
            display_name=display or agent_id,
            real_name=real_name,
            title=_text(profile.get("title")),
            avatar_url=avatar,
        )
