"""The customer WebSocket: the session's events pushed as they happen, resumable from a seq.

Owns: `WS /api/sessions/{session_id}/ws?token=<token>&after=<seq>`. Each text frame is one event
object of the contract, in seq order, each sent once per connection; a client that drops the socket
reconnects with `after=<last seq it saw>` and gets exactly what it missed. Frames the client sends
are read (so a close is noticed) and ignored. The server closes the socket with 1000 after the
`closed` event, with 1000 "idle" after `idle_close_s` without an event (so a client that vanished
without a FIN does not hold a socket forever; the widget simply reconnects), and with 1001 when the
server shuts down.

The endpoint returns only once the client's side of the closing handshake has been read (or
`CLOSE_HANDSHAKE_S` passed): Hypercorn half-closes the TCP stream from the application's task
when the endpoint returns, while its reader task may still be answering the client's close frame;
the two sends on one stream raise `trio.BusyResourceError` and take the server down (Hypercorn
0.18). Waiting for the disconnect puts the reader's answer strictly before the endpoint returns.

A refused handshake is answered with a plain HTTP error (401, 404, 400) and the usual JSON body
when the server supports the ASGI denial-response extension (Hypercorn does); otherwise it is
accepted and closed at once with 4000 + the HTTP status (4401, 4404, 4400).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable

import structlog
import trio
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from transport.chat_errors import ApiError, NotFound, error_body
from transport.chat_session import ChatSessions, bearer_token
from transport.chat_wire import encode_event, parse_after

__all__ = ["websocket_events", "websocket_not_found"]

_log = structlog.get_logger("chat_api")

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_HANDSHAKE_S = 5.0


class _Gone(Exception):
    """The client went away while we were sending."""


async def _refuse(websocket: WebSocket, error: ApiError) -> None:
    _log.info("chat_ws_refused", status=error.status, error=error.code)
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(
            JSONResponse(
                error_body(error.code, error.detail),
                status_code=error.status,
                headers=error.headers(),
            )
        )
    else:
        await websocket.accept()
        await websocket.close(code=4000 + error.status, reason=error.code)


async def websocket_not_found(websocket: WebSocket) -> None:
    """Any other WebSocket path: refused like an unknown HTTP route (404)."""
    await _refuse(websocket, NotFound("not_found", "no WebSocket endpoint here"))


async def _send(websocket: WebSocket, text: str) -> None:
    try:
        await websocket.send_text(text)
    except (WebSocketDisconnect, RuntimeError, OSError):
        raise _Gone from None


async def _push(
    websocket: WebSocket, sessions: ChatSessions, session_id: str, after: int, idle_close_s: float
) -> tuple[int, str]:
    """Send every event after `after` as it comes; returns the close code and reason to use."""
    domain = sessions.domain
    last = after
    with sessions.domain_errors():
        events = domain.events_after(session_id, last)
    if not events and sessions.is_closed(session_id):  # its `closed` event is behind `after`
        return CLOSE_NORMAL, "session closed"
    while True:
        for event in events:
            await _send(websocket, json.dumps(encode_event(event)))
            last = event.seq
            if event.type == "closed":
                return CLOSE_NORMAL, "session closed"
        # The events that arrived while sending, or the next ones (a closing session's last
        # events, `closed` included, still come: the session appends them all).
        with sessions.domain_errors(), trio.move_on_after(idle_close_s) as idle:
            events = await domain.wait_events(session_id, last)
        if idle.cancelled_caught:
            return CLOSE_NORMAL, "idle"


async def _drain_inbound(websocket: WebSocket) -> None:
    """Read and drop what the client sends; returns when it disconnects."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


def websocket_events(
    sessions: ChatSessions, *, idle_close_s: float
) -> Callable[[WebSocket], Awaitable[None]]:
    async def endpoint(websocket: WebSocket) -> None:
        session_id = websocket.path_params["session_id"]
        try:
            token = websocket.query_params.get("token") or bearer_token(websocket.headers)
            after = parse_after(websocket.query_params.get("after"))
            sessions.authorize_token(session_id, token)
        except ApiError as error:
            await _refuse(websocket, error)
            return
        await websocket.accept()
        log = _log.bind(session_id=session_id)
        log.info("chat_ws_opened", after=after)
        close_code: int | None = None
        close_reason = ""
        client_left = False
        async with trio.open_nursery() as nursery:

            async def until_client_leaves() -> None:
                nonlocal client_left
                await _drain_inbound(websocket)
                client_left = True
                nursery.cancel_scope.cancel()

            async def until_draining() -> None:
                nonlocal close_code, close_reason
                await sessions.draining.wait()
                close_code, close_reason = CLOSE_GOING_AWAY, "server shutting down"
                nursery.cancel_scope.cancel()

            async def push() -> None:
                nonlocal close_code, close_reason
                try:
                    close_code, close_reason = await _push(
                        websocket, sessions, session_id, after, idle_close_s
                    )
                except _Gone:
                    close_code = None
                except ApiError as error:  # the session vanished under us
                    close_code, close_reason = 4000 + error.status, error.code
                nursery.cancel_scope.cancel()

            nursery.start_soon(until_client_leaves)
            nursery.start_soon(until_draining)
            nursery.start_soon(push)
        if close_code is not None and not client_left:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await websocket.close(code=close_code, reason=close_reason)
        if not client_left:
            with (
                contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError),
                trio.move_on_after(CLOSE_HANDSHAKE_S),
            ):
                await _drain_inbound(websocket)
        log.info("chat_ws_closed", code=close_code, reason=close_reason)

    return endpoint
