"""Chaos knobs for the Web API, set through POST /_emu/faults. Pure: decisions use a seeded RNG.

Owns parsing and validating the knobs (a bad knob is refused whole, nothing half-applied) and
deciding, per Web API call, whether to delay it, fail it or answer 429. The one-shot socket knobs
(`drop_sockets`, `disconnect`) are parsed here and carried out by the caller.

    {"reset": true,                                  clear every knob first
     "seed": 7,                                      reseed the RNG that picks the affected share
     "rate_limits": true,                            switch Slack's rate tiers on or off
     "delay": {"share": 0.5, "seconds": 2.0, "methods": ["chat.postMessage"]},
     "fail": {"share": 0.1, "error": "fatal_error", "status": 500, "methods": [...]},
     "ratelimit": {"count": 3, "retry_after": 1, "methods": [...]},   the next 3 calls get 429
     "drop_sockets": "all" | "socket_mode" | "rtm",  close those WebSockets now
     "disconnect": "warning" | "refresh_requested" | "link_disabled"}  Socket Mode disconnect
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from emulator.errors import SlackError

__all__ = ["Decision", "FaultRequest", "Faults", "parse_request"]

DropTarget = Literal["all", "socket_mode", "rtm"]
DisconnectReason = Literal["warning", "refresh_requested", "link_disabled"]
_DROP: dict[str, DropTarget] = {"all": "all", "socket_mode": "socket_mode", "rtm": "rtm"}
_REASONS: dict[str, DisconnectReason] = {
    "warning": "warning",
    "refresh_requested": "refresh_requested",
    "link_disabled": "link_disabled",
}


@dataclass(frozen=True, slots=True)
class Delay:
    share: float
    seconds: float
    methods: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Fail:
    share: float
    error: str = "fatal_error"
    status: int = 200
    methods: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ForcedLimit:
    count: int
    retry_after: int = 1
    methods: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class FaultRequest:
    """One validated POST /_emu/faults body."""

    reset: bool = False
    seed: int | None = None
    rate_limits: bool | None = None
    delay: Delay | None = None
    fail: Fail | None = None
    ratelimit: ForcedLimit | None = None
    drop_sockets: DropTarget | None = None
    disconnect: DisconnectReason | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do to one Web API call; all None/0 means serve it normally."""

    delay_s: float = 0.0
    fail: Fail | None = None
    retry_after: int | None = None


def _bad(problem: str) -> SlackError:
    return SlackError("invalid_request", detail=problem)


def _number(
    body: dict[str, Any], key: str, where: str, lo: float, hi: float, default: float | None = None
) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise _bad(f"{where}.{key} must be a number in [{lo}, {hi}]")
    return float(value)


def _methods(body: dict[str, Any], where: str) -> frozenset[str]:
    methods = body.get("methods", [])
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
        raise _bad(f"{where}.methods must be a list of method names")
    return frozenset(methods)


def _section(body: dict[str, Any], key: str, allowed: set[str]) -> dict[str, Any] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not set(value) <= allowed:
        raise _bad(f"{key} must be an object with keys {sorted(allowed)}")
    return value


def parse_request(body: Any) -> FaultRequest:
    known = {
        "reset",
        "seed",
        "rate_limits",
        "delay",
        "fail",
        "ratelimit",
        "drop_sockets",
        "disconnect",
    }
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object")
    if unknown := set(body) - known:
        raise _bad(f"unknown knob(s): {sorted(unknown)}")
    request = FaultRequest()
    for flag in ("reset", "rate_limits"):
        if flag in body:
            if not isinstance(body[flag], bool):
                raise _bad(f"{flag} must be true or false")
            request = replace(request, **{flag: body[flag]})
    if "seed" in body:
        if isinstance(body["seed"], bool) or not isinstance(body["seed"], int):
            raise _bad("seed must be an integer")
        request = replace(request, seed=body["seed"])
    if d := _section(body, "delay", {"share", "seconds", "methods"}):
        request = replace(
            request,
            delay=Delay(
                _number(d, "share", "delay", 0, 1, 1.0),
                _number(d, "seconds", "delay", 0, 600),
                _methods(d, "delay"),
            ),
        )
    if f := _section(body, "fail", {"share", "error", "status", "methods"}):
        error, status = f.get("error", "fatal_error"), f.get("status", 200)
        if not isinstance(error, str) or not error:
            raise _bad("fail.error must be a Slack error code")
        if status not in (200, 500, 502, 503, 504):
            raise _bad("fail.status must be one of 200, 500, 502, 503, 504")
        request = replace(
            request,
            fail=Fail(_number(f, "share", "fail", 0, 1, 1.0), error, status, _methods(f, "fail")),
        )
    if r := _section(body, "ratelimit", {"count", "retry_after", "methods"}):
        request = replace(
            request,
            ratelimit=ForcedLimit(
                int(_number(r, "count", "ratelimit", 0, 1_000_000)),
                int(_number(r, "retry_after", "ratelimit", 0, 3600, 1)),
                _methods(r, "ratelimit"),
            ),
        )
    if "drop_sockets" in body:
        value = body["drop_sockets"]
        value = "all" if value is True else value
        target = _DROP.get(value) if isinstance(value, str) else None
        if target is None:
            raise _bad('drop_sockets must be true, "all", "socket_mode" or "rtm"')
        request = replace(request, drop_sockets=target)
    if "disconnect" in body:
        value = body["disconnect"]
        reason = _REASONS.get(value) if isinstance(value, str) else None
        if reason is None:
            raise _bad('disconnect must be "warning", "refresh_requested" or "link_disabled"')
        request = replace(request, disconnect=reason)
    return request


def _applies(methods: frozenset[str], method: str) -> bool:
    return not methods or method in methods


@dataclass(slots=True)
class Faults:
    """The standing knobs and the RNG that picks which calls they hit."""

    rate_limits: bool = False
    delay: Delay | None = None
    fail: Fail | None = None
    ratelimit: ForcedLimit | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def apply(self, request: FaultRequest) -> None:
        if request.reset:
            self.delay = self.fail = self.ratelimit = None
            self.rate_limits = False
            self.rng.seed(0)
        if request.seed is not None:
            self.rng.seed(request.seed)
        if request.rate_limits is not None:
            self.rate_limits = request.rate_limits
        if request.delay is not None:
            self.delay = (
                request.delay if request.delay.seconds > 0 and request.delay.share > 0 else None
            )
        if request.fail is not None:
            self.fail = request.fail if request.fail.share > 0 else None
        if request.ratelimit is not None:
            self.ratelimit = request.ratelimit if request.ratelimit.count > 0 else None

    def decide(self, method: str) -> Decision:
        if method.startswith("_"):
            return Decision()
        if self.ratelimit is not None and _applies(self.ratelimit.methods, method):
            forced = self.ratelimit
            left = forced.count - 1
            self.ratelimit = replace(forced, count=left) if left > 0 else None
            return Decision(retry_after=forced.retry_after)
        delay = 0.0
        if (
            self.delay
            and _applies(self.delay.methods, method)
            and self.rng.random() < self.delay.share
        ):
            delay = self.delay.seconds
        if (
            self.fail
            and _applies(self.fail.methods, method)
            and self.rng.random() < self.fail.share
        ):
            return Decision(delay_s=delay, fail=self.fail)
        return Decision(delay_s=delay)

    def to_json(self) -> dict[str, Any]:
        def section(value: Delay | Fail | ForcedLimit | None) -> dict[str, Any] | None:
            if value is None:
                return None
            out = dataclasses.asdict(value)
            out["methods"] = sorted(out["methods"])
            return out

        return {
            "rate_limits": self.rate_limits,
            "delay": section(self.delay),
            "fail": section(self.fail),
            "ratelimit": section(self.ratelimit),
        }
