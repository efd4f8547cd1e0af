"""Agents as Slack sees them: presence (confirmed and polled) and profiles.

Owns:
- `Presence`: `confirm(agent)` asks users.getPresence once (just before an offer), within a
  budget: when the call cannot be answered in time (its tier saturated by a rush of offers, or
  Slack slow), the presence last seen answers instead;
  `poll()` walks the agent pool with users.getPresence within its tier (Tier 3, about 50 calls
  a minute for the whole pool), one agent every `max(interval_s / pool, min_gap_s)` seconds, so
  the pool stays under `60 / min_gap_s` calls a minute and leaves room for confirmations. Every
  answer that differs from the last one known (and the first one) is published as
  `PresenceChanged`. In RTM mode `presence_change` events are noted (`note`) by the inbound side.
- `Profiles`: users.info -> `AgentProfile` (display name, real name, title, avatar), and the
  avatars the room posts use as `icon_url`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
import trio

from actors.ports import AgentProfile, PresenceChanged
from transport.slack_errors import SlackError, SlackTimeout
from transport.slack_web import SlackWebClient

__all__ = ["Presence", "PresenceStatistics", "Profiles"]

_log = structlog.get_logger("transport.slack_presence")

Publish = Callable[[PresenceChanged], Awaitable[None]]
_AVATAR_KEYS = ("image_192", "image_512", "image_72", "image_48", "image_original")


@dataclass(frozen=True, slots=True)
class PresenceStatistics:
    polls: int
    poll_failures: int
    confirms: int
    confirms_from_last_seen: int
    changes: int
    known: Mapping[str, bool]


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
    ) -> None:
        if interval_s <= 0 or min_gap_s < 0 or confirm_budget_s <= 0:
            raise ValueError(
                "interval_s and confirm_budget_s must be positive, min_gap_s not negative"
            )
        self._web = web
        self._publish = publish
        self.agents: tuple[str, ...] = tuple(dict.fromkeys(agents))
        self._interval = interval_s
        self._min_gap = min_gap_s
        self._confirm_budget = confirm_budget_s
        self._from_last_seen = 0
        self._known: dict[str, bool] = {}
        self._polls = self._failures = self._confirms = self._changes = 0

    @property
    def gap_s(self) -> float:
        """Seconds between two polls of the steady rounds."""
        return max(self._interval / max(1, len(self.agents)), self._min_gap)

    async def fetch(self, agent_id: str) -> bool:
        """users.getPresence: True when the agent is active (the green dot)."""
        answer = await self._web.call("users.getPresence", user=agent_id)
        active = answer.get("presence") == "active"
        await self.observe(agent_id, active)
        return active

    async def confirm(self, agent_id: str) -> bool:
        """The check just before an offer; raises `SlackError` when Slack cannot tell.

        Its answer is published even when unchanged, and after a failure the next poll's is:
        the domain counts an agent whose confirmation failed or came too late as away, and
        would otherwise never hear that they are still active.

        The call gets `confirm_budget_s` (below the domain's own deadline). When it cannot be
        answered by then, typically because a rush of offers has users.getPresence queueing
        behind its tier, the presence last seen (a poll, RTM, an earlier confirmation) answers:
        a saturated tier must not read as every agent gone away."""
        self._confirms += 1
        last = self._known.pop(agent_id, None)
        with trio.move_on_after(self._confirm_budget):
            return await self.fetch(agent_id)
        if last is None:
            raise SlackTimeout("users.getPresence", f"no answer within {self._confirm_budget}s")
        self._from_last_seen += 1
        _log.info("presence_confirmed_from_last_seen", agent=agent_id, active=last)
        await self.observe(agent_id, last)
        return last

    def note(self, agent_id: str, active: bool) -> bool:
        """Remember a presence seen anywhere; True when it is news (changed, or the first)."""
        if self._known.get(agent_id) == active:
            return False
        self._known[agent_id] = active
        self._changes += 1
        return True

    async def observe(self, agent_id: str, active: bool) -> None:
        """A presence seen by a poll or a confirmation: published when it is news."""
        if self.note(agent_id, active):
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
                await self._poll_one(agent_id)
                await trio.sleep(gap)
            if once:
                return
            gap = self.gap_s

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
        )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class Profiles:
    """users.info for agents; remembers each agent's avatar for the room posts."""

    def __init__(self, web: SlackWebClient) -> None:
        self._web = web
        self.avatars: dict[str, str] = {}

    async def fetch(self, agent_id: str) -> AgentProfile:
        answer = await self._web.call("users.info", user=agent_id)
        user = answer.get("user")
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
