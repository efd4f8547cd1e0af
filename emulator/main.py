"""The emulator as a process of its own: `python run.py emulator [--port N]`.

Owns the standalone life: logging setup (console on a terminal, JSON lines otherwise), serving
until SIGINT or SIGTERM, then stopping cleanly (sockets closed, exit code 0). A port that cannot be
bound is one line on stderr and exit code 1.
"""

from __future__ import annotations

import logging
import signal
import sys

import structlog
import trio

from emulator.app import Emulator
from emulator.config import EmulatorConfig

__all__ = ["configure_logging", "run_standalone"]

log = structlog.get_logger("emulator")


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """structlog for the emulator's own events; stdlib logging (Hypercorn) at warning and above."""
    console = fmt == "console" or (fmt == "auto" and sys.stdout.isatty())
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s"
    )


async def serve_until_signalled(config: EmulatorConfig) -> None:
    emulator = Emulator(config)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(emulator.run)
            async for signum in signals:
                log.info("emulator_stopping", signal=signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break
    log.info("emulator_stopped")


def run_standalone(
    config: EmulatorConfig, *, log_level: str = "info", log_format: str = "auto"
) -> int:
    """Serve the emulator until SIGINT/SIGTERM; returns the process exit code."""
    configure_logging(log_level, log_format)
    failure: BaseException | None = None
    try:
        trio.run(serve_until_signalled, config)
    except* OSError as group:
        failure = group.exceptions[0]
        while isinstance(failure, BaseExceptionGroup):
            failure = failure.exceptions[0]
    if failure is not None:
        reason = getattr(failure, "strerror", None) or str(failure)
        print(f"emulator: cannot listen on {config.host}:{config.port}: {reason}", file=sys.stderr)
        return 1
    return 0
