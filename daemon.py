"""The composition root: one root nursery starting the journal, the actors, Slack and the chat API.

Owns the daemon's wiring and life: which pieces start in which order, what each is handed, and
the drain on SIGINT/SIGTERM. Start order (each `await nursery.start(...)` returns once the piece
is usable): the bundled emulator (emulator mode only), the journal, the domain, the Slack actor,
then the chat server. Stop order is the reverse, so the domain can still withdraw pending offers
through Slack and journal them before the journal closes.
"""

from __future__ import annotations

import datetime as dt
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog
import trio

from actors.business_hours import OpeningHours
from actors.domain import Domain
from actors.journal import JournalActor, JournalError, Recovery
from actors.journal_sink import JournalSink
from actors.knowledge_base import KnowledgeBaseError, load_knowledge_base
from actors.knowledge_bot import KnowledgeBot
from actors.log import configure_logging
from actors.ports import SlackCommand
from actors.restore import RestoreError, rebuild
from actors.settings import Settings, SlackSettings
from transport.chat_server import ChatServer
from transport.chat_session import WidgetConfig
from transport.slack_actor import SlackActor
from transport.slack_errors import SlackApiError
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
    nursery: trio.Nursery, settings: Settings, settings_dir: Path
) -> JournalSink:
    """Start the journal, rebuild the durable state from it, and snapshot it when due."""
    path = resolve_path(settings.journal.path, settings_dir)
    journal = JournalActor(
        path, fsync=settings.journal.fsync, snapshot_every=settings.journal.snapshot_every
    )
    try:
        recovery: Recovery = await nursery.start(journal.run)
        state = rebuild(recovery.snapshot, recovery.records)
    except (JournalError, RestoreError) as e:
        raise StartupError(f"journal.path: {path}: {e}") from None
    report = recovery.report
    _log.info(
        "journal_recovered",
        path=str(path),
        snapshot_lsn=report.snapshot_lsn,
        replayed=report.records,
        last_lsn=report.last_lsn,
        sessions=len(state.sessions),
    )
    sink = JournalSink(journal, state)
    await nursery.start(sink.run_snapshots)
    return sink


async def serve(
    settings: Settings,
    settings_dir: Path,
    stop: trio.Event,
    *,
    task_status: trio.TaskStatus[DaemonUrls] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the whole daemon until `stop` is set (then drain in order) or it is cancelled;
    reports its URLs once everything is up."""
    bot = build_bot(settings, settings_dir)
    hours = OpeningHours.from_settings(settings.business_hours)
    async with trio.open_nursery() as outer:
        emulator_url: str | None = None
        slack_settings = settings.slack
        if settings.slack.mode == "emulator":
            emulator_url, slack_settings = await _start_emulator(outer, settings)
        web = SlackWebClient.from_settings(slack_settings)
        agents = list(settings.routing.agents) or await _emulator_agents(web)
        if emulator_url is not None and settings.slack.leads_channel:
            await _emulator_leads_channel(web, settings.slack.leads_channel)
        sink = await _open_journal(outer, settings, settings_dir)
        send_commands, receive_commands = trio.open_memory_channel[SlackCommand](1_000)
        domain = Domain(
            routing=settings.routing,
            bot_settings=settings.bot,
            bot=bot,
            slack=send_commands,
            sink=sink,
            agents=agents,
            is_open=lambda: hours.is_open(dt.datetime.now(dt.UTC)),
            next_opening=lambda: hours.next_opening(dt.datetime.now(dt.UTC)),
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
        chat = ChatServer(
            domain,
            settings.http,
            widget=WidgetConfig(
                offer_timeout_s=settings.routing.offer_timeout_s,
                max_tries=settings.routing.max_tries,
            ),
            health=lambda: _health(slack, domain),
            extra_routes=slack.http_routes() if _http_inbound(settings.slack) else (),
        )
        async with trio.open_nursery() as middle:
            await middle.start(slack.run, receive_commands)
            async with trio.open_nursery() as inner:
                await inner.start(domain.run)
                async with trio.open_nursery() as front:
                    chat_url: str = await front.start(chat.run)
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


def _health(slack: SlackActor, domain: Domain) -> Mapping[str, bool]:
    return {"slack": slack.identity is not None, "actors": True}


async def _serve_until_signalled(settings: Settings, settings_dir: Path) -> None:
    stop = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def watch_signals() -> None:
                async for signum in signals:
                    _log.info("daemon_stopping", signal=signal.Signals(signum).name)
                    if stop.is_set():  # a second signal: stop at once
                        nursery.cancel_scope.cancel()
                    stop.set()

            nursery.start_soon(watch_signals)
            await serve(settings, settings_dir, stop)  # returns once drained
            nursery.cancel_scope.cancel()
    _log.info("daemon_stopped")


def run_daemon(settings: Settings, settings_path: Path | str = "settings.yaml") -> int:
    """Run until SIGINT/SIGTERM; returns the process exit code (2 for a startup problem)."""
    configure_logging(settings.log.level, settings.log.format)
    settings_dir = Path(settings_path).resolve().parent
    try:
        trio.run(_serve_until_signalled, settings, settings_dir)
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
