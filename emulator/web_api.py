"""The Web API endpoint, /api/<method>: one Starlette handler in front of the method tables.

Owns the order Slack applies to a call: unknown method (404 `unknown_method`), body decoding,
injected faults (delay, failure, forced 429), authentication and token types (`not_authed`,
`invalid_auth`, `not_allowed_token_type`), rate tiers (429 + `Retry-After`), then the method
itself. Failures are HTTP 200 `{"ok": false, "error": ...}` as Slack answers them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
import trio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emulator import api_chat, api_conversations, api_users, api_views
from emulator.errors import SlackError
from emulator.faults import Faults
from emulator.rate_tiers import RateLimiter
from emulator.web_args import MAX_BODY, Args, Call, Links, decode_body, token_of
from emulator.workspace import Principal, Workspace

__all__ = ["HANDLERS", "WebApi", "WebApiStats"]

HANDLERS: dict[str, Callable[[Call], dict[str, Any]]] = {
    **api_chat.HANDLERS,
    **api_conversations.HANDLERS,
    **api_users.HANDLERS,
    **api_views.HANDLERS,
}

log = structlog.get_logger("emulator.web_api")


@dataclass(frozen=True, slots=True)
class WebApiStats:
    calls: int
    errors: int
    ratelimited: int
    faults_injected: int


def _check_token_type(method: str, actor: Principal) -> None:
    if (method == "apps.connections.open") != (actor.kind == "app"):
        raise SlackError("not_allowed_token_type")


class WebApi:
    """Serves /api/<method> over a workspace; `after_call` runs after every call (events fan-out)."""

    def __init__(
        self,
        ws: Workspace,
        *,
        faults: Faults,
        limiter: RateLimiter,
        links: Links,
        after_call: Callable[[], None],
    ) -> None:
        self.ws = ws
        self.faults = faults
        self.limiter = limiter
        self.links = links
        self.after_call = after_call
        self._calls = self._errors = self._ratelimited = self._faults = 0

    def statistics(self) -> WebApiStats:
        return WebApiStats(self._calls, self._errors, self._ratelimited, self._faults)

    async def endpoint(self, request: Request) -> Response:
        method = request.path_params["method"]
        self._calls += 1
        handler = HANDLERS.get(method)
        if handler is None:
            self._errors += 1
            return JSONResponse(
                {"ok": False, "error": "unknown_method", "req_method": method}, status_code=404
            )
        try:
            data: dict[str, Any] = dict(request.query_params)
            json_body = False
            if request.method == "POST":
                length = request.headers.get("content-length", "0")
                if not length.isdigit() or int(length) > MAX_BODY:
                    raise SlackError("request_too_large")
                body, json_body = decode_body(
                    request.headers.get("content-type", ""), await request.body()
                )
                data.update(body)
        except SlackError as e:
            self._errors += 1
            return JSONResponse(e.body())
        response = await self._faulted(method)
        if response is not None:
            return response
        args = Args(data)
        token = token_of(request.headers.get("authorization"), data, json_body=json_body)
        try:
            actor = self.ws.authenticate(token)
            _check_token_type(method, actor)
            if self.faults.rate_limits and token is not None:
                channel = data.get("channel") if isinstance(data.get("channel"), str) else None
                retry_after = self.limiter.check(method, token, channel, trio.current_time())
                if retry_after is not None:
                    self._ratelimited += 1
                    return _ratelimited(retry_after)
            base_url = str(request.base_url).rstrip("/")
            result = handler(Call(self.ws, actor, args, base_url, self.links))
        except SlackError as e:
            self._errors += 1
            result = e.body()
        finally:
            self.after_call()
        return JSONResponse(result)

    async def _faulted(self, method: str) -> Response | None:
        decision = self.faults.decide(method)
        if decision.delay_s:
            self._faults += 1
            await trio.sleep(decision.delay_s)
        if decision.retry_after is not None:
            self._faults += 1
            self._ratelimited += 1
            return _ratelimited(decision.retry_after)
        if decision.fail is not None:
            self._faults += 1
            self._errors += 1
            log.info(
                "fault_injected",
                method=method,
                error=decision.fail.error,
                status=decision.fail.status,
            )
            return JSONResponse(
                {"ok": False, "error": decision.fail.error}, status_code=decision.fail.status
            )
        return None


def _ratelimited(retry_after: int) -> Response:
    return JSONResponse(
        {"ok": False, "error": "ratelimited"},
        status_code=429,
        headers={"Retry-After": str(retry_after)},
    )
