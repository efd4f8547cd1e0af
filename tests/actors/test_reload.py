"""Settings reloads: which changed keys apply live, which wait for a restart, and the reloader
(prepared off the loop, applied on it, refused whole when anything is wrong)."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from actors.reload import Reloader, changed_keys, plan_reload
from actors.settings import Settings, SettingsError, parse_settings


def _settings(**sections: dict[str, Any]) -> Settings:
    return parse_settings({name: dict(values) for name, values in sections.items()})


def test_routing_bot_and_hours_are_live_everything_else_needs_a_restart() -> None:
    current = _settings(routing={"offer_timeout_s": 45, "agents": ["U01"]})
    new = _settings(
        routing={"offer_timeout_s": 20, "max_tries": 5, "agents": ["U01", "U02"]},
        bot={"handoff_phrases": ["operator"], "no_agent_text": "Nobody, sorry."},
        business_hours={"timezone": "Europe/Paris", "weekly": {"mon": ["09:00-17:00"]}},
        http={"port": 9999},
        slack={"room_prefix": "room_"},
        journal={"fsync": "always"},
        log={"level": "debug"},
    )
    plan = plan_reload(current, new)
    assert plan.live == (
        "bot.handoff_phrases",
        "bot.no_agent_text",
        "business_hours.timezone",
        "business_hours.weekly.mon",
        "routing.max_tries",
        "routing.offer_timeout_s",
    )
    assert plan.restart == (
        "http.port",
        "journal.fsync",
        "log.level",
        "routing.agents",
        "slack.room_prefix",
    )
    effective = plan.effective
    assert (effective.routing.offer_timeout_s, effective.routing.max_tries) == (20, 5)
    assert effective.routing.agents == ("U01",)  # kept until a restart
    assert effective.http.port == current.http.port and effective.journal == current.journal
    assert effective.bot == new.bot and effective.business_hours == new.business_hours
    # reported again on the next reload, until the restart applies them
    assert plan_reload(effective, new).restart == plan.restart
    assert plan_reload(effective, new).live == ()


def test_nothing_changed_is_an_empty_plan() -> None:
    settings = _settings()
    plan = plan_reload(settings, _settings())
    assert not plan.changed and plan.effective == settings
    assert changed_keys({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}) == ["a.c"]


class _Reload:
    """What the daemon gives the reloader: a file to read, a bot to build, parts to swap."""

    def __init__(self) -> None:
        self.file: Settings | Exception = _settings()
        self.build_error: Exception | None = None
        self.applied: list[tuple[Settings, str]] = []
        self._changed = trio.Event()

    async def wait_applied(self, count: int) -> None:
        while len(self.applied) < count:
            await self._changed.wait()

    def load(self) -> Settings:
        if isinstance(self.file, Exception):
            raise self.file
        return self.file

    def prepare(self, settings: Settings) -> str:
        if self.build_error is not None:
            raise self.build_error
        return f"bot for {settings.bot.handoff_phrases}"

    def apply(self, settings: Settings, bot: str) -> None:
        self.applied.append((settings, bot))
        self._changed.set()
        self._changed = trio.Event()


async def test_a_reload_applies_what_changed_and_a_bad_one_is_refused_whole() -> None:
    world = _Reload()
    reloader = Reloader(_settings(), load=world.load, prepare=world.prepare, apply=world.apply)
    world.file = _settings(routing={"offer_timeout_s": 5}, bot={"handoff_phrases": ["human"]})
    plan = await reloader.reload()
    assert plan is not None and plan.live == ("bot.handoff_phrases", "routing.offer_timeout_s")
    assert world.applied == [(plan.effective, "bot for ('human',)")]
    assert reloader.current.routing.offer_timeout_s == 5

    for problem in (SettingsError("routing.offer_timeout_s: bad"), OSError("gone")):
        world.file = problem
        assert await reloader.reload() is None
    world.file = _settings(routing={"offer_timeout_s": 7})
    world.build_error = ValueError("bot.knowledge_base: not a mapping")
    assert await reloader.reload() is None
    assert len(world.applied) == 1 and reloader.current.routing.offer_timeout_s == 5
    assert (reloader.applied, reloader.refused) == (1, 3)


async def test_the_reloader_takes_requests_in_order(nursery: trio.Nursery) -> None:
    world = _Reload()
    reloader = Reloader(_settings(), load=world.load, prepare=world.prepare, apply=world.apply)
    send, receive = trio.open_memory_channel[object](4)
    await nursery.start(reloader.run, receive)
    for count, timeout in enumerate((10, 20), start=1):
        world.file = _settings(routing={"offer_timeout_s": timeout})
        await send.send(None)
        with trio.fail_after(5):
            await world.wait_applied(count)
    assert [s.routing.offer_timeout_s for s, _ in world.applied] == [10, 20]


@pytest.mark.parametrize("section", ["http", "slack", "emulator", "journal", "log"])
def test_sections_read_once_at_start_are_never_applied(section: str) -> None:
    current = _settings()
    new = parse_settings({section: {}})
    assert plan_reload(current, new).effective == current
