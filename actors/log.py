"""Logging set-up: structlog with a console renderer on a terminal and JSON lines otherwise.

Owns: `configure_logging` and the redaction of secrets. Every event is a short snake_case name with
key/values; values of keys that look like credentials, and Slack token shapes inside any string,
are replaced before rendering so tokens and secrets never reach a log.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog

__all__ = ["configure_logging", "redact"]

_SECRET_KEYS = re.compile(r"(token|secret|password|authorization|signature)", re.IGNORECASE)
_TOKEN_SHAPE = re.compile(r"\bxox[abposr]-[A-Za-z0-9-]+|\bxapp-[A-Za-z0-9-]+")
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _TOKEN_SHAPE.sub("[redacted]", value)
    return value


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: hide credential-like keys and Slack token shapes in values."""
    for key, value in list(event.items()):
        if _SECRET_KEYS.search(key) and value:
            event[key] = "[redacted]"
        else:
            event[key] = _scrub(value)
    return event


def configure_logging(
    level: Literal["debug", "info", "warning", "error"] = "info",
    fmt: Literal["auto", "console", "json"] = "auto",
    stream: TextIO | None = None,
) -> None:
    """Configure structlog once for the process (the daemon, the emulator or the load tester)."""
    out = stream or sys.stderr
    console = fmt == "console" or (fmt == "auto" and out.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer()
        if console
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info if not console else structlog.dev.set_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
