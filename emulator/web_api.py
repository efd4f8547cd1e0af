"""The Web API endpoint, /api/<method>: one Starlette handler in front of the method tables.

Owns the order Slack applies to a call: unknown method (404 `unknown_method`), body decoding,
injected faults (delay, failure, forced 429), authentication and token types (`not_authed`,
`invalid_auth`, `not_allowed_token_type`), rate tiers (429 + `Retry-After`), then the method
itself. Failures are HTTP 200 `{"ok": false, "error": ...}` as Slack answers them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import structlog
import trio
from starlette.requests import Request
from starlette.responses import Response

from emulator import api_chat, api_conversations, api_users, api_views
from emulator.errors import SlackError
from emulator.faults import Faults
from emulator.rate_tiers import RateLimiter
from emulator.web_args import MAX_BODY, Args, Call, Links, decode_body, token_of
from emulator.workspace import Principal, Workspace

__all__ = ["HANDLERS", "JSON", "Answer", "WebApi", "WebApiStats", "encode_json"]

JSON = "application/json"

HANDLERS: dict[str, Callable[[Call], dict[str, Any]]] = {
    **api_chat.HANDLERS,
    **api_conversations.HANDLERS,
    **api_users.HANDLERS,
    **api_views.HANDLERS,
}

log = structlog.get_logger("emulator.web_api")


def encode_json(body: Any) -> bytes:
    """A JSON answer's bytes, exactly as Starlette's JSONResponse renders them."""
    return json.dumps(
        body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode()


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer of the Web API: status, the JSON body's bytes, extra headers."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


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
        """The Starlette route (HEAD and anything the ASGI front hands over)."""
        answer = await self.handle(
            request.path_params["method"],
            request.method,
            request.scope["query_string"].decode("latin-1"),
            request.headers,
            request.body,
            str(request.base_url).rstrip("/"),
        )
        return Response(
            answer.body, status_code=answer.status, headers=answer.headers, media_type=JSON
        )

    async def handle(
        self,
        method: str,
        http_method: str,
        query: str,
        headers: Mapping[str, str],
        read_body: Callable[[], Awaitable[bytes]],
        base_url: str,
    ) -> Answer:
        """One call: `query` undecoded, `headers` by lower-case name, `base_url` without a
        trailing slash (where the WebSocket URLs handed out point)."""
        self._calls += 1
        handler = HANDLERS.get(method)
        if handler is None:
            self._errors += 1
            return _answer(
                {"ok": False, "error": "unknown_method", "req_method": method}, status=404
            )
        try:
            data: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
            json_body = False
            if http_method == "POST":
                length = headers.get("content-length", "0")
                if not length.isdigit() or int(length) > MAX_BODY:
                    raise SlackError("request_too_large")
                body, json_body = decode_body(headers.get("content-type", ""), await read_body())
                data.update(body)
        except SlackError as e:
            self._errors += 1
            return _answer(e.body())
        faulted = await self._faulted(method)
        if faulted is not None:
            return faulted
        args = Args(data)
        token = token_of(headers.get("authorization"), data, json_body=json_body)
        try:
            actor = self.ws.authenticate(token)
            _check_token_type(method, actor)
            if self.faults.rate_limits and token is not None:
                channel = data.get("channel") if isinstance(data.get("channel"), str) else None
                retry_after = self.limiter.check(method, token, channel, trio.current_time())
                if retry_after is not None:
                    self._ratelimited += 1
                    return _ratelimited(retry_after)
            result = handler(Call(self.ws, actor, args, base_url, self.links))
        except SlackError as e:
            self._errors += 1
            result = e.body()
        finally:
            self.after_call()
        return _answer(result)

    async def _faulted(self, method: str) -> Answer | None:
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
            return _answer({"ok": False, "error": decision.fail.error}, status=decision.fail.status)
        return None


def _answer(body: dict[str, Any], *, status: int = 200) -> Answer:
    return Answer(status, encode_json(body))


def _ratelimited(retry_after: int) -> Answer:
    return Answer(
        429, encode_json({"ok": False, "error": "ratelimited"}), {"Retry-After": str(retry_after)}
    )
