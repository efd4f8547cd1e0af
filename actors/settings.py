"""The validated, frozen settings of the daemon, loaded from settings.yaml.

Owns: the schema of settings.yaml (every key, its type, its range and its default), `${NAME}`
environment references, and turning any problem into one `SettingsError` line that names the key.
Transport reads its own part of these settings; the emulator is handed plain values by run.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "BotSettings",
    "BusinessHours",
    "EmulatorAgent",
    "EmulatorSettings",
    "HttpSettings",
    "JournalSettings",
    "LogSettings",
    "RoutingSettings",
    "Settings",
    "SettingsError",
    "SlackSettings",
    "load_settings",
    "parse_settings",
]


class SettingsError(Exception):
    """A settings file that cannot be used; `str()` is one line naming the key and the problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


PositiveSeconds = Annotated[float, Field(gt=0, le=86_400)]
Port = Annotated[int, Field(ge=0, le=65_535)]


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    port: Port = 8080
    max_body_bytes: Annotated[int, Field(ge=256, le=10_000_000)] = 16_384
    max_text_chars: Annotated[int, Field(ge=1, le=40_000)] = 4_000
    messages_per_minute: Annotated[int, Field(ge=1, le=100_000)] = 60
    leads_token: str = ""  # set: GET /api/leads needs it as a bearer token
    ops_token: str = ""  # set: /metrics and /api/escalations need it as a bearer token


class SlackSettings(_Section):
    mode: Literal["emulator", "socket", "rtm", "events"] = "emulator"
    bot_token: str = ""
    app_token: str = ""
    signing_secret: str = ""
    api_url: str = "https://slack.com/api/"
    room_prefix: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,40}$")] = "swivl_user_"
    leads_channel: str = ""

    @model_validator(mode="after")
    def _tokens_for_real_slack(self) -> SlackSettings:
        needed = {
            "socket": ("bot_token", "app_token"),
            "rtm": ("bot_token",),
            "events": ("bot_token", "signing_secret"),
        }.get(self.mode, ())
        for key in needed:
            if not getattr(self, key):
                raise _KeyProblem(key, f"required when slack.mode is {self.mode!r}")
        if self.mode == "rtm" and not (self.app_token or self.signing_secret):
            # RTM carries messages and presence; clicks and slash commands need Socket Mode
            # (app token) or the Events API's signed HTTP routes (signing secret).
            raise _KeyProblem(
                "app_token",
                "rtm mode needs an app token (or a signing_secret for HTTP interactivity)",
            )
        return self


class EmulatorAgent(_Section):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,79}$")]
    real_name: str = ""
    title: str = ""


class EmulatorSettings(_Section):
    host: str = "127.0.0.1"
    port: Port = 0
    agents: tuple[EmulatorAgent, ...] = ()
    rate_limits: bool = False

    @field_validator("agents")
    @classmethod
    def _unique_names(cls, agents: tuple[EmulatorAgent, ...]) -> tuple[EmulatorAgent, ...]:
        names = [a.name for a in agents]
        if len(names) != len(set(names)):
            raise ValueError("agent names must be unique")
        return agents


class RoutingSettings(_Section):
    agents: tuple[Annotated[str, Field(pattern=r"^[UW][A-Z0-9]{2,}$")], ...] = ()
    offer_timeout_s: PositiveSeconds = 45.0
    max_tries: Annotated[int, Field(ge=1, le=1_000)] = 3
    max_chats_per_agent: Annotated[int, Field(ge=1, le=100)] = 3
    auto_away_after_misses: Annotated[int, Field(ge=0, le=1_000)] = 3
    idle_takeover_end_s: Annotated[float, Field(ge=0, le=604_800)] = 0.0
    presence_poll_interval_s: PositiveSeconds = 60.0


class BotSettings(_Section):
    confidence_threshold: Annotated[float, Field(ge=0, le=1)] = 0.6
    handoff_phrases: tuple[Annotated[str, Field(min_length=1)], ...] = (
        "talk to an agent",
        "talk to a human",
        "speak to a person",
        "human",
        "agent",
        "representative",
    )
    knowledge_base: str = "knowledge_base.yaml"
    live_chat_first: bool = False
    greeting: str = "Hi! I'm the store's assistant. Ask me anything, or ask for a person."
    still_looking_text: str = "Still looking for someone to help you, thanks for waiting."
    searching_text: str = "Let me find someone to help you."
    no_agent_text: str = "Sorry, nobody is available right now. Leave your email and question and we will get back to you."
    closed_text: str = "Our team is offline right now. Leave your email and question and we will get back to you when we open."
    agent_left_text: str = "The agent has left the chat. I'm back to help."
    idle_end_text: str = "This chat was quiet for a while, so the agent has left. I'm back to help."
    lead_open_text: str = (
        "Thanks! We have your question and will answer you at {email} as soon as one of us is free."
    )
    lead_closed_text: str = (
        "Thanks! We have your question and will answer you at {email} once we open, {opening}."
    )


_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class BusinessHours(_Section):
    """Weekly opening windows in one timezone; no windows at all means always open."""

    timezone: str = "UTC"
    weekly: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], tuple[str, ...]] = Field(
        default_factory=dict
    )
    holidays: tuple[dt.date, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {name!r}") from None
        return name

    @field_validator("weekly")
    @classmethod
    def _windows(cls, weekly: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for day, windows in weekly.items():
            for window in windows:
                m = _WINDOW.match(window)
                if not m or (m[1], m[2]) >= (m[3], m[4]):
                    raise ValueError(f"{day}: {window!r} is not a window like '09:00-17:30'")
        return weekly

    @property
    def always_open(self) -> bool:
        return not self.weekly


class JournalSettings(_Section):
    path: str = "var/journal"
    fsync: Literal["always", "batch", "off"] = "batch"
    snapshot_every: Annotated[int, Field(ge=100, le=10_000_000)] = 50_000


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = "auto"


class Settings(_Section):
    http: HttpSettings = HttpSettings()
    slack: SlackSettings = SlackSettings()
    emulator: EmulatorSettings = EmulatorSettings()
    routing: RoutingSettings = RoutingSettings()
    bot: BotSettings = BotSettings()
    business_hours: BusinessHours = BusinessHours()
    journal: JournalSettings = JournalSettings()
    log: LogSettings = LogSettings()

    @model_validator(mode="after")
    def _agent_pool_for_real_slack(self) -> Settings:
        if self.slack.mode != "emulator" and not self.routing.agents:
            raise _KeyProblem("routing.agents", f"required when slack.mode is {self.slack.mode!r}")
        return self


class _KeyProblem(ValueError):
    """Raised inside a section validator to blame one key of that section."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}\x00{problem}")


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand_env(value: Any, path: str) -> Any:
    if isinstance(value, str):

        def lookup(m: re.Match[str]) -> str:
            name = m[1]
            if name not in os.environ:
                raise SettingsError(f"{path}: environment variable {name} is not set")
            return os.environ[name]

        return _ENV_REF.sub(lookup, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = [str(p) for p in first["loc"]]
    message = first["msg"]
    if first["type"] == "value_error" and "\x00" in message:
        key, message = message.removeprefix("Value error, ").split("\x00", 1)
        loc.append(key)
    else:
        message = message.removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        elif first["type"] == "missing":
            message = "required key is missing"
    key = ".".join(loc) or "settings"
    return f"{key}: {message}"


def parse_settings(data: Any) -> Settings:
    """Validate already-parsed YAML data; an empty document means all defaults."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SettingsError("settings: the top level must be a mapping of sections")
    for section, body in data.items():
        if body is None:
            data[section] = {}
    data = _expand_env(data, "")
    try:
        # JSON mode keeps strict types (no "30" for a number, no true for an int) while
        # accepting YAML's lists for tuples and dates for date fields.
        return Settings.model_validate_json(json.dumps(data, default=str))
    except ValidationError as e:
        raise SettingsError(_one_line(e)) from None


def load_settings(path: str | os.PathLike[str]) -> Settings:
    """Read and validate a settings file; any problem raises `SettingsError` with one line."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as e:
        raise SettingsError(f"settings: cannot read {file}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise SettingsError(f"settings: invalid YAML{where}: {problem}") from None
    return parse_settings(data)
