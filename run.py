"""Entry point: `python run.py [daemon|emulator|loadtest] [--settings PATH] ...`.

Thin on purpose: parse the command line, load the settings (exit 2 with one line on a bad file)
and hand over to the composition root of the chosen command.
"""

from __future__ import annotations

import argparse
import sys

from actors.settings import Settings, SettingsError, load_settings


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
    commands.add_parser("daemon", parents=[common], help="run the daemon (the default)")
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "daemon"
    if command == "loadtest":
        from loadtest.cli import main as loadtest_main

        return loadtest_main(args.rest, settings_path=args.settings)
    settings = _settings(args.settings)
    if command == "emulator":
        from emulator.main import run_standalone

        return run_standalone(settings, port=args.port)
    from daemon import run_daemon

    return run_daemon(settings)


if __name__ == "__main__":
    sys.exit(main())
