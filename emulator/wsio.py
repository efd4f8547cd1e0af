"""The WebSocket seam between the hubs (Socket Mode, RTM) and the ASGI server.

Owns `TextSocket`, the three operations the hubs need, `SocketClosed`, the one error they see when
the peer is gone, and `StarletteSocket`, the adapter that translates Starlette's and Hypercorn's
errors into it at this boundary. Tests can drive the hubs with any other `TextSocket`.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect

__all__ = ["SocketClosed", "StarletteSocket", "TextSocket"]


class SocketClosed(Exception):
    """The peer closed the WebSocket (or it broke)."""


class TextSocket(Protocol):
    async def send_text(self, text: str) -> None: ...

    async def receive_text(self) -> str: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class StarletteSocket:
    """A `TextSocket` over an accepted Starlette WebSocket."""

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket

    async def send_text(self, text: str) -> None:
        try:
            await self._ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            raise SocketClosed from None

    async def receive_text(self) -> str:
        while True:
            try:
                message = await self._ws.receive()
            except (WebSocketDisconnect, RuntimeError, OSError):
                raise SocketClosed from None
            if message["type"] == "websocket.disconnect":
                raise SocketClosed
            text = message.get("text")
            if text is not None:
                return str(text)
            data = message.get("bytes")
            if data is not None:
                return bytes(data).decode("utf-8", errors="replace")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self._ws.close(code, reason)
