"""`python run.py loadtest [flags]`: the command line of the load tester.

Owns the flags (each one overrides a key of the YAML profile; `--help` documents every knob), the
run's output (live progress on stderr, the summary on stdout, the JSON report and the PNG) and the
exit code: 0 when every check passed, 1 when one failed, 2 for a bad profile, bad settings or a
daemon that would not start.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import trio
from rich.console import Console

from loadtest.processes import StackDied, StackError
from loadtest.profile import Profile, ProfileError, load_profile

__all__ = ["main", "parser"]

# flag dest -> (profile key, help)
_KNOBS: dict[str, tuple[str, str]] = {
    "duration": ("duration_s", "seconds during which customers arrive"),
    "drain": ("drain_s", "then at most this many seconds for conversations in flight to finish"),
    "settle": (
        "settle_s",
        "if the drain cut customers off, seconds for their last messages to land before the audit",
    ),
    "seed": ("seed", "random seed: the same seed replays the same choices"),
    "customers": ("customers.concurrent", "customers at once at most (one leaving makes room)"),
    "arrival_rate": ("customers.arrival_rate", "new customers per second (Poisson arrivals)"),
    "total": ("customers.total", "stop arrivals after this many customers (0: no limit)"),
    "bot_messages": ("customers.bot_messages", "questions each customer asks the bot first"),
    "escalate_share": ("customers.escalate_share", "share of customers who ask for a person"),
    "messages": ("customers.messages", "messages a customer sends once an agent joined"),
    "think": ("customers.think_s", "MIN MAX seconds between a customer's messages"),
    "leave_share": ("customers.leave_share", "share who close the chat mid-takeover"),
    "until_end": (
        "customers.until_end",
        "in a takeover, keep chatting until arrivals stop, then leave (sustained relay)",
    ),
    "transport": ("customers.transport", "how customers receive events: websocket or poll"),
    "agents": ("agents.count", "simulated agents (created in the emulator)"),
    "accept_share": ("agents.accept_share", "share of offers accepted"),
    "ignore_share": ("agents.ignore_share", "share of offers ignored (the rest are missed)"),
    "answer_delay": ("agents.answer_delay_s", "MIN MAX seconds from offer to Accept/Ignore"),
    "reply_delay": ("agents.reply_delay_s", "MIN MAX seconds from customer message to reply"),
    "end_delay": ("agents.end_delay_s", "MIN MAX seconds from last reply to ending the takeover"),
    "end_button_share": (
        "agents.end_button_share",
        "share ending with the button (else /end-takeover)",
    ),
    "offer_timeout": ("daemon.offer_timeout_s", "routing.offer_timeout_s of the daemon"),
    "max_tries": ("daemon.max_tries", "routing.max_tries of the daemon"),
    "max_chats": ("daemon.max_chats_per_agent", "routing.max_chats_per_agent of the daemon"),
    "presence_poll": (
        "daemon.presence_poll_interval_s",
        "routing.presence_poll_interval_s (default: the settings' value)",
    ),
    "rate_limits": ("daemon.rate_limits", "the emulator enforces Slack's real rate tiers"),
    "fsync": ("daemon.journal_fsync", "journal.fsync of the daemon: always, batch or off"),
    "messages_per_minute": ("daemon.messages_per_minute", "http.messages_per_minute"),
    "log_level": ("daemon.log_level", "log level of the daemon and the emulator"),
    "ready_timeout": ("daemon.ready_timeout_s", "seconds the daemon may take to be ready"),
    "json": ("report.json_path", "where to write the JSON report"),
    "png": ("report.png_path", "where to write the plot"),
    "interval": ("report.interval_s", "seconds per time bucket in the plot and the JSON"),
}
_SPANS = {"think", "answer_delay", "reply_delay", "end_delay"}
_TYPES: dict[str, Any] = {
    "seed": int,
    "customers": int,
    "total": int,
    "bot_messages": int,
    "messages": int,
    "agents": int,
    "max_tries": int,
    "max_chats": int,
    "messages_per_minute": int,
    "transport": str,
    "fsync": str,
    "log_level": str,
    "json": str,
    "png": str,
}
_CHOICES = {
    "transport": ["websocket", "poll"],
    "fsync": ["always", "batch", "off"],
    "log_level": ["debug", "info", "warning", "error"],
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run.py loadtest",
        description=(
            "Load-test takeover: start the Slack emulator and the daemon in their own processes, "
            "then simulated customers (through the customer API) and simulated agents (through "
            "Slack) talk to them. Prints a summary, writes a JSON report and a PNG plot. Every "
            "flag overrides a key of the YAML profile (default: loadtest/profiles/default.yaml)."
        ),
        epilog=(
            "Exit code 0 when no message was lost or duplicated and every escalation reached an "
            "outcome; 1 when a check failed; 2 for a bad profile or settings, or a daemon that "
            "would not start."
        ),
    )
    defaults = _defaults()
    p.add_argument("--settings", default=None, help=argparse.SUPPRESS)
    p.add_argument(
        "--profile",
        metavar="YAML",
        default=None,
        help="the profile to start from (default: loadtest/profiles/default.yaml)",
    )
    p.add_argument("--no-progress", action="store_true", help="no live display")
    p.add_argument(
        "--keep", action="store_true", help="keep the run's directory (settings, logs, journal)"
    )
    p.add_argument("--daemon-url", help="attach to a running daemon's customer API instead")
    p.add_argument("--emulator-url", help="attach to a running emulator (with --daemon-url)")
    p.add_argument("--daemon-pid", type=int, help="the attached daemon's pid, for CPU and RSS")
    knobs = p.add_argument_group(
        "profile overrides", "[profile key; its value in the shipped default profile]"
    )
    for dest, (key, about) in _KNOBS.items():
        flag = "--" + dest.replace("_", "-")
        text = f"{about} [{key}; {defaults.get(key, '?')}]"
        if dest in _SPANS:
            knobs.add_argument(
                flag, dest=dest, nargs=2, type=float, metavar=("MIN", "MAX"), help=text
            )
        elif dest in ("rate_limits", "until_end"):
            knobs.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, help=text)
        else:
            knobs.add_argument(
                flag,
                dest=dest,
                type=_TYPES.get(dest, float),
                choices=_CHOICES.get(dest),
                help=text,
            )
    return p


def _defaults() -> dict[str, str]:
    """The shipped profile's values by dotted key, for the help text."""
    try:
        data = load_profile(None).model_dump(mode="json")
    except ProfileError:
        return {}
    flat: dict[str, str] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict) and set(value) != {"min", "max"}:
                walk(value, f"{prefix}{key}.")
            elif isinstance(value, dict):
                flat[prefix + key] = f"{value['min']:g} {value['max']:g}"
            else:
                flat[prefix + key] = str(value)

    walk(data, "")
    return flat


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dest, (key, _) in _KNOBS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        out[key] = {"min": value[0], "max": value[1]} if dest in _SPANS else value
    return out


def _run(profile: Profile, args: argparse.Namespace, settings_path: str) -> int:
    from loadtest.plot import write_plot
    from loadtest.progress import show_progress
    from loadtest.report import json_report, summary_table
    from loadtest.runner import Attach, run_load

    out, err = Console(), Console(stderr=True)
    attach = None
    if args.daemon_url or args.emulator_url:
        if not (args.daemon_url and args.emulator_url):
            print("loadtest: --daemon-url and --emulator-url go together", file=sys.stderr)
            return 2
        attach = Attach(args.daemon_url.rstrip("/"), args.emulator_url.rstrip("/"), args.daemon_pid)
    else:
        err.print("starting the emulator and the daemon ...", highlight=False)
    progress = None if args.no_progress else partial(show_progress, console=err)
    failed: BaseException | None = None
    try:
        result = trio.run(
            partial(run_load, profile, settings_path, attach=attach, progress=progress)
        )
    except* StackError as group:
        failed = _first(group)
    except* KeyboardInterrupt:
        failed = KeyboardInterrupt()
    if isinstance(failed, KeyboardInterrupt):
        print("loadtest: interrupted", file=sys.stderr)
        return 130
    if failed is not None:
        print(f"loadtest: {failed}", file=sys.stderr)
        return 1 if isinstance(failed, StackDied) else 2
    report = json_report(result)
    out.print(summary_table(result))
    Path(profile.report.json_path).write_text(json.dumps(report, indent=1), encoding="utf-8")
    write_plot(result, profile.report.png_path)
    out.print(
        f"JSON report: {profile.report.json_path}   plot: {profile.report.png_path}",
        highlight=False,
    )
    if args.keep or not report["ok"]:
        out.print(f"run directory (settings, logs, journal): {result.workdir}", highlight=False)
    else:
        shutil.rmtree(result.workdir, ignore_errors=True)
    return 0 if report["ok"] else 1


def _first(group: BaseException) -> BaseException:
    while isinstance(group, BaseExceptionGroup):
        group = group.exceptions[0]
    return group


def main(argv: Sequence[str] | None = None, settings_path: str = "settings.yaml") -> int:
    args = parser().parse_args(list(argv or []))
    if args.settings:
        settings_path = args.settings
    try:
        profile = load_profile(args.profile, overrides(args))
    except ProfileError as e:
        print(f"loadtest: bad profile: {e}", file=sys.stderr)
        return 2
    return _run(profile, args, settings_path)
