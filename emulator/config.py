"""The emulator's own plain configuration and the credentials it hands out.

Owns `EmulatorConfig` (what run.py or a test passes in), `AgentSeed` (one human created at start,
presence active) and `Credentials` (the tokens an app needs, as `GET /_emu/app` shows them). Nothing
here knows the daemon's settings: run.py converts them into these plain values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["AgentSeed", "ConfigError", "Credentials", "EmulatorConfig", "check_url"]

USER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")


class ConfigError(ValueError):
    """An emulator configuration that cannot be used; `str()` names the field."""


def check_url(field: str, url: str | None) -> None:
    """Raise `ConfigError` unless `url` is None or an absolute http(s) URL."""
    if url is None:
        return
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{field}: {url!r} is not an http(s) URL")


@dataclass(frozen=True, slots=True)
class AgentSeed:
    """A human of the workspace, created at start with presence active and a user token."""

    name: str
    real_name: str = ""
    title: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not USER_NAME.match(self.name):
            raise ConfigError(f"agents: {self.name!r} is not a Slack user name (a-z0-9._-)")


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """Everything the emulator needs; tokens left None are generated at start.

    `events_url`, `interactivity_url` and `commands_url` switch that kind of delivery from Socket
    Mode to signed HTTP POSTs (Events API mode); they can also be set at runtime via POST /_emu/app.
    `ack_timeout_s` is how long a Socket Mode envelope may stay unacknowledged before it is
    redelivered (Slack's 3-second window), `max_retries` how often it is redelivered.
    """

    host: str = "127.0.0.1"
    port: int = 0
    agents: tuple[AgentSeed, ...] = ()
    rate_limits: bool = False
    bot_token: str | None = None
    app_token: str | None = None
    signing_secret: str | None = None
    events_url: str | None = None
    interactivity_url: str | None = None
    commands_url: str | None = None
    ack_timeout_s: float = 3.0
    max_retries: int = 3
    team_name: str = "Takeover Emulated"
    app_name: str = "takeover"

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65_535:
            raise ConfigError(f"port: {self.port} is out of range")
        names = [a.name for a in self.agents]
        if len(names) != len(set(names)):
            raise ConfigError("agents: names must be unique")
        for field in ("bot_token", "app_token", "signing_secret"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"{field}: must be a non-empty string or None")
        for field in ("events_url", "interactivity_url", "commands_url"):
            check_url(field, getattr(self, field))
        if not 0 < self.ack_timeout_s <= 3_600:
            raise ConfigError("ack_timeout_s: must be in (0, 3600]")
        if not 0 <= self.max_retries <= 100:
            raise ConfigError("max_retries: must be in [0, 100]")


@dataclass(frozen=True, slots=True)
class Credentials:
    """What an app needs to talk to this workspace (same fields as GET /_emu/app)."""

    bot_token: str
    app_token: str
    signing_secret: str
    bot_user_id: str
    team_id: str
    app_id: str
    bot_id: str
