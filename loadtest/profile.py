"""A load-test profile: every knob of a run, validated, from YAML and/or command-line overrides.

Owns the schema (`Profile` and its sections, with defaults and ranges), loading a YAML profile,
applying overrides given as dotted keys (`{"agents.count": 50}`), and turning any problem into one
`ProfileError` line that names the key. The shipped profile is `loadtest/profiles/default.yaml`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "DEFAULT_PROFILE",
    "AgentBehaviour",
    "CustomerBehaviour",
    "DaemonKnobs",
    "Profile",
    "ProfileError",
    "ReportKnobs",
    "load_profile",
    "parse_profile",
]

DEFAULT_PROFILE = Path(__file__).with_name("profiles") / "default.yaml"


class ProfileError(Exception):
    """A profile that cannot be used; `str()` is one line naming the key and the problem."""


Share = Annotated[float, Field(ge=0, le=1)]
Seconds = Annotated[float, Field(ge=0, le=86_400)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Span(_Section):
    """A uniform random delay between `min` and `max` seconds."""

    min: Seconds
    max: Seconds

    @model_validator(mode="after")
    def _ordered(self) -> Span:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class CustomerBehaviour(_Section):
    concurrent: Annotated[int, Field(ge=1, le=200_000)] = 100
    arrival_rate: Annotated[float, Field(gt=0, le=100_000)] = 0.5
    total: Annotated[int, Field(ge=0, le=10_000_000)] = 0
    bot_messages: Annotated[int, Field(ge=0, le=1_000)] = 1
    escalate_share: Share = 0.5
    messages: Annotated[int, Field(ge=0, le=100_000)] = 5
    think_s: Span = Span(min=1.0, max=3.0)
    leave_share: Share = 0.1
    until_end: bool = False
    transport: Literal["websocket", "poll"] = "websocket"


class AgentBehaviour(_Section):
    count: Annotated[int, Field(ge=1, le=5_000)] = 20
    accept_share: Share = 0.7
    ignore_share: Share = 0.15
    answer_delay_s: Span = Span(min=0.5, max=3.0)
    reply_delay_s: Span = Span(min=0.3, max=1.5)
    end_delay_s: Span = Span(min=0.5, max=2.0)
    end_button_share: Share = 0.5

    @model_validator(mode="after")
    def _shares(self) -> AgentBehaviour:
        if self.accept_share + self.ignore_share > 1.0 + 1e-9:
            raise ValueError("accept_share + ignore_share must be at most 1 (the rest miss)")
        return self

    @property
    def miss_share(self) -> float:
        return max(0.0, 1.0 - self.accept_share - self.ignore_share)


class DaemonKnobs(_Section):
    offer_timeout_s: Annotated[float, Field(gt=0, le=86_400)] = 10.0
    max_tries: Annotated[int, Field(ge=1, le=1_000)] = 3
    max_chats_per_agent: Annotated[int, Field(ge=1, le=100)] = 3
    presence_poll_interval_s: Annotated[float, Field(gt=0, le=86_400)] | None = None
    rate_limits: bool = False
    journal_fsync: Literal["always", "batch", "off"] = "batch"
    messages_per_minute: Annotated[int, Field(ge=1, le=100_000)] = 600
    log_level: Literal["debug", "info", "warning", "error"] = "warning"
    ready_timeout_s: Annotated[float, Field(gt=0, le=3_600)] = 120.0


class ReportKnobs(_Section):
    json_path: str = "loadtest-report.json"
    png_path: str = "loadtest-report.png"
    interval_s: Annotated[float, Field(gt=0, le=3_600)] = 1.0


class Profile(_Section):
    duration_s: Annotated[float, Field(gt=0, le=604_800)] = 60.0
    drain_s: Annotated[float, Field(ge=0, le=86_400)] = 90.0
    settle_s: Annotated[float, Field(ge=0, le=3_600)] = 15.0
    seed: int = 1
    customers: CustomerBehaviour = CustomerBehaviour()
    agents: AgentBehaviour = AgentBehaviour()
    daemon: DaemonKnobs = DaemonKnobs()
    report: ReportKnobs = ReportKnobs()


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "profile"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    return f"{key}: {message}"


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ProfileError(f"{dotted}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def parse_profile(data: Any, overrides: dict[str, Any] | None = None) -> Profile:
    """Validate parsed YAML (None: all defaults) with dotted-key overrides applied on top."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProfileError("profile: the top level must be a mapping")
    data = json.loads(json.dumps(data, default=str))  # a deep copy, with YAML's types made plain
    for key, value in (overrides or {}).items():
        _set(data, key, value)
    try:
        return Profile.model_validate_json(json.dumps(data))
    except ValidationError as e:
        raise ProfileError(_one_line(e)) from None


def load_profile(path: str | Path | None, overrides: dict[str, Any] | None = None) -> Profile:
    """Read a YAML profile (None: the shipped default) and apply overrides."""
    file = Path(path) if path is not None else DEFAULT_PROFILE
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as e:
        raise ProfileError(f"profile: cannot read {file}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ProfileError(f"profile: invalid YAML{where} in {file}") from None
    return parse_profile(data, overrides)
