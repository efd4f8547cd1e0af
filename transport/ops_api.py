"""Operations routes on the public HTTP server: the escalation history, and who may read it.

Owns `GET /api/escalations?since=<epoch>&limit=<n>` (the escalations started at or after
`since`, oldest first, from `actors.history`), its JSON shape, `bearer_guard` (an optional
`http.ops_token` checked in constant time, shared with /metrics), and `Liveness`, which tells
/healthz whether the long-lived services the daemon started are still running.

    {"escalations": [{"id", "session_id", "trigger", "started_at", "ended_at", "outcome",
                      "reason", "result", "handled_by", "waited_s", "available_at_start",
                      "offers": [{"id", "agent", "made_at", "expires_at", "ended_at",
                                  "outcome", "after_s"}]}],
     "truncated": bool, "next_since": float | null}

`result` says how it ended in one word: handled (by `handled_by`), nobody_accepted,
nobody_available, closed_hours, cancelled, or searching. Customer ids are left out on purpose:
a customer id opens that customer's history on the customer API.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import trio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from actors.history import EscalationRecord

__all__ = ["EscalationSource", "Liveness", "bearer_guard", "encode_escalation", "ops_routes"]

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1_000


class EscalationSource(Protocol):
    def since(self, since: float, limit: int = ...) -> tuple[list[EscalationRecord], bool]: ...


def bearer_guard(token: str) -> Callable[[Request], bool]:
    """A check of `Authorization: Bearer <token>` in constant time; no token: open to all."""
    if not token:
        return lambda request: True
    expected = token.encode("utf-8")

    def authorized(request: Request) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        ok = hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), expected)
        return ok and scheme.lower() == "bearer"

    return authorized


def _error(status: int, code: str, detail: str) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def encode_escalation(record: EscalationRecord) -> dict[str, Any]:
    return {
        "id": record.escalation_id,
        "session_id": record.session_id,
        "trigger": record.trigger,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "outcome": record.outcome,
        "reason": record.reason or None,
        "result": record.result,
        "handled_by": record.handled_by,
        "waited_s": record.waited_s,
        "available_at_start": None if record.available is None else list(record.available),
        "offers": [
            {
                "id": o.offer_id,
                "agent": o.agent_id,
                "made_at": o.made_at,
                "expires_at": o.expires_at,
                "ended_at": o.ended_at,
                "outcome": o.outcome,
                "after_s": None if o.ended_at is None else round(o.ended_at - o.made_at, 3),
            }
            for o in record.offers
        ],
    }


def _number(raw: str | None, name: str, default: float) -> float:
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number")
    return value


def ops_routes(
    history: EscalationSource, *, authorized: Callable[[Request], bool] = lambda r: True
) -> list[Route]:
    async def escalations(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "unauthorized", "a valid bearer token is needed")
        try:
            since = _number(request.query_params.get("since"), "since", 0.0)
            limit = _number(request.query_params.get("limit"), "limit", DEFAULT_LIMIT)
        except ValueError as e:
            return _error(400, "bad_request", str(e))
        if limit != int(limit) or not 1 <= limit <= MAX_LIMIT:
            return _error(400, "bad_request", f"limit must be an integer from 1 to {MAX_LIMIT}")
        records, truncated = history.since(since, int(limit))
        body = {
            "escalations": [encode_escalation(r) for r in records],
            "truncated": truncated,
            "next_since": records[-1].started_at if truncated and records else None,
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    return [Route("/api/escalations", escalations, methods=["GET"])]


class Liveness:
    """Tracks whether each watched service is running (started and not yet ended)."""

    def __init__(self) -> None:
        self._up: dict[str, bool] = {}

    def watch(
        self, name: str, run: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[None]]:
        """`run` (a start-protocol service) wrapped to report itself up from `started()` until
        it returns, raises or is cancelled."""
        self._up[name] = False

        async def watched(
            *args: Any, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED
        ) -> None:
            outer = task_status

            class _Status:
                def started(self_inner, value: Any = None) -> None:
                    self._up[name] = True
                    outer.started(value)

            try:
                await run(*args, task_status=_Status())
            finally:
                self._up[name] = False

        return watched

    def components(self) -> Mapping[str, bool]:
        return dict(self._up)

    def alive(self) -> bool:
        return bool(self._up) and all(self._up.values())
