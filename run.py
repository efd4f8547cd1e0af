"""Entry point: `python run.py [daemon|emulator|loadtest] [--settings PATH] ...`.

Thin on purpose: parse the command line, load the settings (exit 2 with one line on a bad file)
and hand over to the composition root of the chosen command.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from actors.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from emulator import EmulatorConfig


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--settings",
        default="settings.yaml",
        metavar="PATH",
        help="settings file (default: %(default)s)",
    )
    parser = argparse.ArgumentParser(
        prog="run.py",
        description="takeover: human agents take over chatbot conversations from Slack",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", metavar="{daemon,emulator,loadtest}")
    daemon = commands.add_parser("daemon", parents=[common], help="run the daemon (the default)")
    for p in (parser, daemon):
        p.add_argument(
            "--repair-journal",
            action="store_true",
            help="start on a journal damaged in the middle, keeping every valid record "
            "(the damaged segment is kept beside it as .corrupt)",
        )
    emulator = commands.add_parser(
        "emulator", parents=[common], help="run the Slack emulator alone"
    )
    emulator.add_argument(
        "--port", type=int, default=None, help="HTTP port (default: emulator.port)"
    )
    loadtest = commands.add_parser(
        "loadtest", parents=[common], help="load-test a daemon and an emulator", add_help=False
    )
    loadtest.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def _settings(path: str) -> Settings:
    try:
        return load_settings(path)
    except SettingsError as e:
        print(f"takeover: bad settings in {path}: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def emulator_config(settings: Settings, *, port: int | None = None) -> EmulatorConfig:
    """The emulator's own plain config from the settings (the emulator never sees `Settings`).

    Tokens set under `slack:` are used by the emulator too, so a daemon configured for real Slack
    can be pointed at it; empty ones are generated.
    """
    from emulator import AgentSeed, EmulatorConfig

    return EmulatorConfig(
        host=settings.emulator.host,
        port=settings.emulator.port if port is None else port,
        agents=tuple(AgentSeed(a.name, a.real_name, a.title) for a in settings.emulator.agents),
        rate_limits=settings.emulator.rate_limits,
        bot_token=settings.slack.bot_token or None,
        app_token=settings.slack.app_token or None,
        signing_secret=settings.slack.signing_secret or None,
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "loadtest" in argv:  # its flags (--help included) belong to the load tester's own parser
        at = argv.index("loadtest")
        head = _parser().parse_args(argv[:at])
        from loadtest.cli import main as loadtest_main

        return loadtest_main(argv[at + 1 :], settings_path=head.settings)
    args = _parser().parse_args(argv)
    command = args.command or "daemon"
    settings = _settings(args.settings)
    if command == "emulator":
        from emulator.main import run_standalone

        return run_standalone(
            emulator_config(settings, port=args.port),
            log_level=settings.log.level,
            log_format=settings.log.format,
        )
    from daemon import run_daemon

    return run_daemon(settings, args.settings, repair_journal=args.repair_journal)


if __name__ == "__main__":
    sys.exit(main())
