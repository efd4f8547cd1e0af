"""The composition root: one root nursery starting the journal, the actors, Slack and the chat API.

Owns the daemon's wiring and life: which pieces start in which order, what each is handed, and
the drain on SIGINT/SIGTERM. Start order (each `await nursery.start(...)` returns once the piece
is usable): the bundled emulator (emulator mode only), the journal, the Slack actor, the domain
(with the hygiene actor, the App Home service and the settings reloader beside it), then the
chat server. Stop order is the reverse, so the domain can still withdraw pending offers through
Slack and journal them before the journal closes. SIGHUP reloads the settings file
(`actors.reload`): what may change live is swapped in, the rest is reported as needing a restart.

Facts reach the journal through a `FactTap` that shows each durable fact to the escalation
history (GET /api/escalations) and the hygiene actor; /metrics reads every piece's statistics at
scrape time (`transport.metrics`); /healthz reports Slack, the journal and the actors.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import structlog
import trio

from actors.business_hours import OpeningHours
from actors.domain import Domain
from actors.fact_tap import FactTap
from actors.history import EscalationHistory
from actors.hygiene import Hygiene, HygieneRules
from actors.journal import JournalActor, JournalError, Recovery
from actors.journal_sink import JournalSink
from actors.knowledge_base import KnowledgeBaseError, load_knowledge_base
from actors.knowledge_bot import KnowledgeBot
from actors.log import configure_logging
from actors.ports import SlackCommand
from actors.reload import Reloader
from actors.restore import RestoreError, rebuild
from actors.settings import Settings, SlackSettings, load_settings
from transport.chat_server import ChatServer
from transport.chat_session import WidgetConfig
from transport.metrics import MetricsSources, metrics_registry, metrics_route
from transport.ops_api import Liveness, bearer_guard, ops_routes
from transport.slack_actor import SlackActor
from transport.slack_errors import SlackApiError
from transport.slack_home import SlackHome
from transport.slack_web import SlackWebClient

__all__ = ["DaemonUrls", "StartupError", "run_daemon", "serve"]

_log = structlog.get_logger("daemon")
PROJECT_DIR = Path(__file__).resolve().parent


class StartupError(Exception):
    """A problem found while starting that an operator must fix; one line, exit code 2."""


@dataclass(frozen=True, slots=True)
class DaemonUrls:
    """Where the running daemon can be reached (what `serve` reports when started)."""

    chat: str
    emulator: str | None


def resolve_path(name: str, settings_dir: Path, *, fallback_dir: Path | None = None) -> Path:
    """A settings path: absolute as given, else relative to the settings file's directory
    (then to `fallback_dir` when it exists only there, e.g. the shipped knowledge base)."""
    path = Path(name)
    if path.is_absolute():
        return path
    local = settings_dir / path
    if not local.exists() and fallback_dir is not None and (fallback_dir / path).exists():
        return fallback_dir / path
    return local


def build_bot(settings: Settings, settings_dir: Path) -> KnowledgeBot:
    path = resolve_path(settings.bot.knowledge_base, settings_dir, fallback_dir=PROJECT_DIR)
    try:
        kb = load_knowledge_base(path)
    except KnowledgeBaseError as e:
        raise StartupError(f"bot.knowledge_base: {e}") from None
    return KnowledgeBot(kb, settings.bot.handoff_phrases, greeting=settings.bot.greeting)


async def _emulator_agents(web: SlackWebClient) -> list[str]:
    """The human users of the bundled emulator's workspace: its seeded agents."""
    answer = await web.call("users.list")
    return [
        member["id"]
        for member in answer.get("members", [])
        if not member.get("is_bot")
        and not member.get("deleted")
        and member.get("id") != "USLACKBOT"
    ]


async def _emulator_leads_channel(web: SlackWebClient, channel: str) -> None:
    """The bundled emulator starts with no channels: create the leads channel the settings
    name (a name, not an id), so leads show in its console."""
    name = channel.strip().removeprefix("#")
    if not name or name != name.lower():  # channel ids are upper case, names lower case
        return
    try:
        await web.call("conversations.create", name=name)
    except SlackApiError as e:
        if e.error_code != "name_taken":
            _log.warning("leads_channel_not_created", channel=name, error=e.error_code)


async def _start_emulator(nursery: trio.Nursery, settings: Settings) -> tuple[str, SlackSettings]:
    from emulator import Emulator
    from run import emulator_config

    emu = Emulator(emulator_config(settings))
    url: str = await nursery.start(emu.run)
    creds = emu.credentials
    slack = settings.slack.model_copy(
        update={
            "api_url": url + "/api/",
            "bot_token": creds.bot_token,
            "app_token": creds.app_token,
            "signing_secret": creds.signing_secret,
        }
    )
    return url, slack


async def _open_journal(
    nursery: trio.Nursery, settings: Settings, settings_dir: Path, *, repair: bool = False
) -> tuple[JournalSink, JournalActor]:
    """Start the journal, rebuild the durable state from it, and snapshot it when due.
    `repair` (the operator's --repair-journal) keeps what is valid around damage in the middle."""
    path = resolve_path(settings.journal.path, settings_dir)
    journal = JournalActor(
        path,
        fsync=settings.journal.fsync,
        snapshot_every=settings.journal.snapshot_every,
        repair=repair,
    )
    try:
        recovery: Recovery = await nursery.start(journal.run)
        state = rebuild(recovery.snapshot, recovery.records)
    except (JournalError, RestoreError) as e:
        raise StartupError(f"journal.path: {path}: {e}") from None
    report = recovery.report
    _log.info(
        "domain_state_rebuilt",
        path=str(path),
        snapshot_lsn=report.snapshot_lsn,
        replayed=report.records,
        last_lsn=report.last_lsn,
        sessions=len(state.sessions),
    )
    sink = JournalSink(journal, state)
    await nursery.start(sink.run_snapshots)
    return sink, journal


def _freeze_startup_heap() -> None:
    """Leave what start-up built (modules, the restored state) out of later full collections:
    a generation-2 collection scans every tracked object, and a restored state can hold millions
    of them (about 190 ms per 1.25 million here, BENCHMARKS.md "Recovery"). Garbage is collected
    first, so nothing unreachable is kept."""
    gc.collect()
    gc.freeze()


async def serve(
    settings: Settings,
    settings_dir: Path,
    stop: trio.Event,
    *,
    reloads: trio.MemoryReceiveChannel[object] | None = None,
    settings_path: Path | None = None,
    repair_journal: bool = False,
    task_status: trio.TaskStatus[DaemonUrls] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the whole daemon until `stop` is set (then drain in order) or it is cancelled;
    reports its URLs once everything is up. Each item on `reloads` reloads `settings_path`."""
    bot = build_bot(settings, settings_dir)
    hours = [OpeningHours.from_settings(settings.business_hours)]  # swapped by a reload
    async with trio.open_nursery() as outer:
        emulator_url: str | None = None
        slack_settings = settings.slack
        if settings.slack.mode == "emulator":
            emulator_url, slack_settings = await _start_emulator(outer, settings)
        web = SlackWebClient.from_settings(slack_settings)
        agents = list(settings.routing.agents) or await _emulator_agents(web)
        if emulator_url is not None and settings.slack.leads_channel:
            await _emulator_leads_channel(web, settings.slack.leads_channel)
        sink, journal = await _open_journal(outer, settings, settings_dir, repair=repair_journal)
        send_commands, receive_commands = trio.open_memory_channel[SlackCommand](1_000)
        history = EscalationHistory(
            available=lambda: tuple(a.id for a in domain.stats().agents if a.available)
        )
        hygiene = Hygiene(
            HygieneRules.from_settings(settings.routing),
            deliver=lambda fact: domain.deliver(fact),
            tell_away=lambda agent_id, misses: home.tell_away(agent_id, misses),
        )
        hygiene.resume(
            (tk.takeover_id, tk.room_id, session_id)
            for session_id, s in sink.state.sessions.items()
            if (tk := s.takeover) is not None and tk.takeover_id and tk.room_id and not s.closed
        )
        domain = Domain(
            routing=settings.routing,
            bot_settings=settings.bot,
            bot=bot,
            slack=send_commands,
            sink=FactTap(sink, history.observe, hygiene.observe),
            agents=agents,
            is_open=lambda: hours[0].is_open(dt.datetime.now(dt.UTC)),
            next_opening=lambda: hours[0].next_opening(dt.datetime.now(dt.UTC)),
            greeting=bot.greeting_text,
            recovered=sink.state,
        )
        slack = SlackActor(
            web,
            slack_settings,
            domain_deliver=domain.deliver,
            agents=agents,
            presence_poll_interval_s=settings.routing.presence_poll_interval_s,
        )
        home = SlackHome(
            web,
            stats=domain.stats,
            deliver=domain.deliver,
            presence=slack.presence.fetch,
            dm_channel=slack.offers.dm_channel,
            agents=agents,
            profile=slack.profiles.fetch,
        )
        slack.inbound.add_handler(home.claim)
        liveness = Liveness()
        guard = bearer_guard(settings.http.ops_token)
        metrics = metrics_registry(
            MetricsSources(
                domain=domain.stats,
                history=history.statistics,
                slack_web=web.statistics,
                relay_to_room=lambda: slack.statistics().relay_to_room,
                slack_connected=slack.connected,
                journal=journal.statistics,
            )
        )
        chat = ChatServer(
            domain,
            settings.http,
            widget=WidgetConfig(
                offer_timeout_s=settings.routing.offer_timeout_s,
                max_tries=settings.routing.max_tries,
            ),
            health=lambda: {
                "slack": slack.connected(),
                "journal": journal.statistics().running,
                "actors": liveness.alive(),
            },
            extra_routes=[
                metrics_route(metrics, authorized=guard),
                *ops_routes(history, authorized=guard),
                *(slack.http_routes() if _http_inbound(settings.slack) else ()),
            ],
        )

        def apply(new: Settings, prepared: tuple[KnowledgeBot, OpeningHours]) -> None:
            new_bot, new_hours = prepared
            domain.apply_settings(new.routing, new.bot, bot=new_bot, greeting=new_bot.greeting_text)
            hygiene.set_rules(HygieneRules.from_settings(new.routing))
            hours[0] = new_hours

        reloader = Reloader(
            settings,
            load=lambda: load_settings(settings_path or settings_dir / "settings.yaml"),
            prepare=lambda new: (
                build_bot(new, settings_dir),
                OpeningHours.from_settings(new.business_hours),
            ),
            apply=apply,
        )
        async with trio.open_nursery() as middle:
            await middle.start(liveness.watch("slack", slack.run), receive_commands)
            async with trio.open_nursery() as inner:
                await inner.start(liveness.watch("domain", domain.run))
                await inner.start(liveness.watch("hygiene", hygiene.run))
                await inner.start(liveness.watch("slack_home", home.run))
                if reloads is not None:
                    await inner.start(reloader.run, reloads)
                async with trio.open_nursery() as front:
                    chat_url: str = await front.start(chat.run)
                    _freeze_startup_heap()
                    _log.info(
                        "daemon_started",
                        widget=chat_url + "/",
                        agent_console=(emulator_url + "/_emu/") if emulator_url else None,
                        slack_mode=settings.slack.mode,
                        agents=len(agents),
                    )
                    task_status.started(DaemonUrls(chat_url, emulator_url))
                    await stop.wait()
                    _log.info("daemon_draining")
                    chat.shutdown()  # no new sessions or messages; the server closes by itself
                inner.cancel_scope.cancel()  # the domain withdraws pending offers through Slack
            await send_commands.aclose()  # the Slack actor finishes what it holds, then stops
        await sink.snapshot()  # what the next start loads instead of replaying the journal
        outer.cancel_scope.cancel()  # the journal flushes; the bundled emulator stops
    await web.aclose()


def _http_inbound(slack: SlackSettings) -> bool:
    """Whether Slack reaches the daemon over the signed HTTP routes: in events mode, and in rtm
    mode without an app token (clicks and slash commands have no other way in then)."""
    return slack.mode == "events" or (slack.mode == "rtm" and not slack.app_token)


async def _serve_until_signalled(
    settings: Settings, settings_path: Path, repair_journal: bool
) -> None:
    stop = trio.Event()
    send_reload, reloads = trio.open_memory_channel[object](1)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:

            async def watch_signals() -> None:
                async for signum in signals:
                    if signum == signal.SIGHUP:
                        _log.info("settings_reload_requested", path=str(settings_path))
                        with contextlib.suppress(trio.WouldBlock):  # one is pending already
                            send_reload.send_nowait(None)
                        continue
                    _log.info("daemon_stopping", signal=signal.Signals(signum).name)
                    if stop.is_set():  # a second signal: stop at once
                        nursery.cancel_scope.cancel()
                    stop.set()

            nursery.start_soon(watch_signals)
            await serve(  # returns once drained
                settings,
                settings_path.parent,
                stop,
                reloads=reloads,
                settings_path=settings_path,
                repair_journal=repair_journal,
            )
            nursery.cancel_scope.cancel()
    _log.info("daemon_stopped")


def run_daemon(
    settings: Settings, settings_path: Path | str = "settings.yaml", *, repair_journal: bool = False
) -> int:
    """Run until SIGINT/SIGTERM; returns the process exit code (2 for a startup problem)."""
    configure_logging(settings.log.level, settings.log.format)
    try:
        trio.run(_serve_until_signalled, settings, Path(settings_path).resolve(), repair_journal)
    except (StartupError, BaseExceptionGroup) as e:
        problem = _startup_error(e)
        if problem is None:
            raise
        print(f"takeover: {problem}", file=sys.stderr)
        return 2
    return 0


def _startup_error(error: BaseException) -> StartupError | None:
    """The StartupError raised inside the nurseries (they wrap it in exception groups)."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error if isinstance(error, StartupError) else None
