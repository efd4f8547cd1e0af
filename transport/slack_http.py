"""Events API mode: Slack's signed HTTP requests, checked, normalised and queued.

Owns the Starlette routes `slack_routes()` returns, to be mounted on the public HTTP server:

    POST /slack/events          event callbacks (and the one-time url_verification challenge)
    POST /slack/interactivity   block_actions and other interactions (form field `payload`)
    POST /slack/commands        slash commands (form fields)

Every request must carry Slack's signature (`transport.slack_signature`: HMAC-SHA256 of the
raw body under the signing secret, timestamp within five minutes), else 401 and nothing is
queued. A valid request is turned into an `InboundRequest` and queued without waiting
(`submit_nowait`), then answered 200 at once, well inside Slack's 3 s: the work happens later,
in the Slack actor's inbound pipeline. A full queue answers 503 so Slack retries the event. Event
callbacks Slack retries (`X-Slack-Retry-Num`) after we had queued them are answered 200 and
dropped by event id.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import parse_qsl

import structlog
import trio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from transport.slack_decode import InboundKind, InboundRequest
from transport.slack_signature import verify_slack_signature

__all__ = ["MAX_BODY_BYTES", "InboundQueue", "SlackHttp", "slack_routes"]

_log = structlog.get_logger("transport.slack_http")

MAX_BODY_BYTES = 1_000_000


class InboundQueue(Protocol):
    def submit_nowait(self, item: InboundRequest) -> None:
        """Queue now, or raise `trio.WouldBlock`."""
        ...


class _Refused(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


def _refusal(status: int, error: str) -> Response:
    return JSONResponse({"ok": False, "error": error}, status_code=status)


class SlackHttp:
    """The three endpoints; `remember` event ids are kept against Slack's retries."""

    def __init__(
        self,
        signing_secret: str,
        queue: InboundQueue,
        *,
        wall_clock: Callable[[], float] = time.time,
        remember: int = 10_000,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        if not signing_secret.strip():
            raise ValueError("Events API mode needs the app's signing secret")
        self._secret = signing_secret
        self._queue = queue
        self._wall_clock = wall_clock
        self._remember = remember
        self._max_body = max_body_bytes
        self._events: OrderedDict[str, None] = OrderedDict()
        self.accepted = self.refused = self.retries_dropped = 0

    def routes(self, prefix: str = "/slack") -> list[BaseRoute]:
        return [
            Route(f"{prefix}/events", self.events, methods=["POST"]),
            Route(f"{prefix}/interactivity", self.interactivity, methods=["POST"]),
            Route(f"{prefix}/commands", self.commands, methods=["POST"]),
        ]

    # --- endpoints ----------------------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        try:
            body = await self._signed_body(request)
            payload = _json_object(body)
        except _Refused as e:
            return self._refuse(request, e)
        if payload.get("type") == "url_verification":
            challenge = payload.get("challenge")
            if not isinstance(challenge, str):
                return self._refuse(request, _Refused(400, "invalid_challenge"))
            _log.info("slack_url_verified")
            return JSONResponse({"challenge": challenge})
        event_id = payload.get("event_id")
        retry = request.headers.get("x-slack-retry-num")
        if isinstance(event_id, str) and event_id in self._events:
            self.retries_dropped += 1
            _log.info("slack_event_retry_dropped", event_id=event_id, retry=retry)
            return Response(status_code=200)
        answer = self._queue_request("events_api", payload)
        if answer.status_code == 200 and isinstance(event_id, str):
            self._events[event_id] = None
            if len(self._events) > self._remember:
                self._events.popitem(last=False)
        return answer

    async def interactivity(self, request: Request) -> Response:
        try:
            form = _form(await self._signed_body(request))
            payload = _json_object(form.get("payload", "").encode())
        except _Refused as e:
            return self._refuse(request, e)
        return self._queue_request("interactive", payload)

    async def commands(self, request: Request) -> Response:
        try:
            form = _form(await self._signed_body(request))
        except _Refused as e:
            return self._refuse(request, e)
        if form.get("ssl_check") == "1":
            return Response(status_code=200)
        return self._queue_request("slash_commands", form)

    # --- helpers ------------------------------------------------------------------------------

    def _queue_request(self, kind: InboundKind, payload: Mapping[str, Any]) -> Response:
        try:
            self._queue.submit_nowait(InboundRequest(kind, payload, "http"))
        except trio.WouldBlock:
            _log.warning("slack_http_queue_full", kind=kind)
            return _refusal(503, "busy")
        self.accepted += 1
        return Response(status_code=200)

    async def _signed_body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body:
            raise _Refused(413, "body_too_large")
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > self._max_body:
                    raise _Refused(413, "body_too_large")
        except ClientDisconnect:
            raise _Refused(400, "client_disconnected") from None
        if not verify_slack_signature(
            self._secret,
            request.headers.get("x-slack-request-timestamp"),
            bytes(body),
            request.headers.get("x-slack-signature"),
            self._wall_clock(),
        ):
            raise _Refused(401, "invalid_signature")
        return bytes(body)

    def _refuse(self, request: Request, refusal: _Refused) -> Response:
        self.refused += 1
        _log.warning("slack_http_refused", path=request.url.path, error=refusal.error)
        return _refusal(refusal.status, refusal.error)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _Refused(400, "invalid_json") from None
    if not isinstance(value, dict):
        raise _Refused(400, "invalid_json")
    return value


def _form(body: bytes) -> dict[str, str]:
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
    except (UnicodeDecodeError, ValueError):
        raise _Refused(400, "invalid_form") from None


def slack_routes(
    signing_secret: str,
    queue: InboundQueue,
    *,
    wall_clock: Callable[[], float] = time.time,
    prefix: str = "/slack",
) -> list[BaseRoute]:
    """The Events API routes for the public HTTP server (see the module docstring)."""
    return SlackHttp(signing_secret, queue, wall_clock=wall_clock).routes(prefix)
