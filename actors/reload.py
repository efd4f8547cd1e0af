"""What a settings reload (SIGHUP) may change while the daemon runs, and what needs a restart.

Owns `plan_reload(current, new) -> ReloadPlan` (pure): the keys that changed, split into those
applied live and those that only a restart applies, and the settings in effect after the reload
(the new live sections over the current ones; restart-only keys keep their running values, so
they are reported again on every reload until the restart). And `Reloader`, which runs one reload
after another: read and prepare off the loop (`trio.to_thread`), then swap on the loop; what
"prepare" and "swap" mean (rebuild the bot, set the domain's rules) is the composition root's.

Live: `routing` (offer timeout, tries, chat limit, auto-away, idle end) except the agent pool
and the presence poll interval; all of `bot` (texts, threshold, hand-off phrases, knowledge
base, greeting, live chat first); `business_hours`. Everything else (`http`, `slack`,
`emulator`, `journal`, `log`, `routing.agents`, `routing.presence_poll_interval_s`) is read once
at start.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
import trio

from actors.settings import Settings

__all__ = [
    "LIVE_SECTIONS",
    "RESTART_ROUTING_KEYS",
    "ReloadPlan",
    "Reloader",
    "changed_keys",
    "plan_reload",
]

_log = structlog.get_logger("actors.reload")
T = TypeVar("T")

LIVE_SECTIONS = ("routing", "bot", "business_hours")
RESTART_ROUTING_KEYS = ("agents", "presence_poll_interval_s")


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    live: tuple[str, ...]
    """Dotted keys that changed and apply now."""
    restart: tuple[str, ...]
    """Dotted keys that changed but apply only after a restart."""
    effective: Settings
    """The settings in effect once the live keys are applied."""

    @property
    def changed(self) -> bool:
        return bool(self.live or self.restart)


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the leaves that differ between two dumped settings trees."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            out += changed_keys(old.get(key), new.get(key), path)
        return out
    return [] if old == new else [prefix or "settings"]


def _is_live(key: str) -> bool:
    section, _, rest = key.partition(".")
    if section not in LIVE_SECTIONS:
        return False
    return not (section == "routing" and rest.split(".")[0] in RESTART_ROUTING_KEYS)


def plan_reload(current: Settings, new: Settings) -> ReloadPlan:
    keys = changed_keys(current.model_dump(mode="json"), new.model_dump(mode="json"))
    live = tuple(k for k in keys if _is_live(k))
    restart = tuple(k for k in keys if not _is_live(k))
    kept = {key: getattr(current.routing, key) for key in RESTART_ROUTING_KEYS}
    effective = current.model_copy(
        update={
            "routing": new.routing.model_copy(update=kept),
            "bot": new.bot,
            "business_hours": new.business_hours,
        }
    )
    return ReloadPlan(live, restart, effective)


class Reloader(Generic[T]):
    """Runs reloads one at a time: `prepare(settings)` (read the settings file, rebuild the bot
    and whatever else is expensive) runs in a worker thread, off the loop; `apply(settings,
    prepared)` then swaps the new parts in on the loop. A reload whose file or bot cannot be
    loaded is refused (`settings_reload_refused` with the reason) and nothing changes."""

    def __init__(
        self,
        current: Settings,
        *,
        load: Callable[[], Settings],
        prepare: Callable[[Settings], T],
        apply: Callable[[Settings, T], None],
    ) -> None:
        self.current = current
        self._load = load
        self._prepare = prepare
        self._apply = apply
        self.applied = self.refused = 0

    def _read(self) -> tuple[ReloadPlan, T]:
        plan = plan_reload(self.current, self._load())
        return plan, self._prepare(plan.effective)

    async def reload(self) -> ReloadPlan | None:
        try:
            plan, prepared = await trio.to_thread.run_sync(self._read)
        except Exception as e:  # a bad file, bad settings, a bad knowledge base: keep the old
            self.refused += 1
            _log.error("settings_reload_refused", reason=str(e) or type(e).__name__)
            return None
        self._apply(plan.effective, prepared)
        self.current = plan.effective
        self.applied += 1
        _log.info("settings_reloaded", live=list(plan.live), restart_needed=list(plan.restart))
        if plan.restart:
            _log.warning("settings_need_restart", keys=list(plan.restart))
        return plan

    async def run(
        self,
        requests: trio.MemoryReceiveChannel[object],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Reload once per request (SIGHUP), in order, until cancelled."""
        task_status.started()
        async for _ in requests:
            await self.reload()
