"""The chat server: Hypercorn's trio worker serving the customer API app on `http.host:http.port`.

Owns: `ChatServer`, a long-lived service with the trio start protocol. `await nursery.start(
server.run)` returns the base URL once the socket is listening (port 0 picks a free port, and the
URL names the one bound). `server.shutdown()` drains: long polls answer at once, WebSockets close
with 1001, new messages get 503, then Hypercorn closes the listener and waits up to
`graceful_timeout_s` for requests in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import structlog
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.routing import BaseRoute

from actors.settings import HttpSettings
from transport.chat_api import build_chat_app
from transport.chat_port import ChatDomain
from transport.chat_session import WidgetConfig

__all__ = ["ChatServer"]

_log = structlog.get_logger("chat_server")


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


class ChatServer:
    """Serves the customer API and the widget; `run` reports the base URL when listening."""

    def __init__(
        self,
        domain: ChatDomain,
        http: HttpSettings,
        *,
        widget: WidgetConfig | None = None,
        health: Callable[[], Mapping[str, bool]] = dict,
        extra_routes: Sequence[BaseRoute] = (),
        graceful_timeout_s: float = 3.0,
        ws_idle_close_s: float = 120.0,
    ) -> None:
        self._http = http
        self._draining = trio.Event()
        self.app = build_chat_app(
            domain,
            http,
            widget=widget,
            health=health,
            draining=self._draining,
            extra_routes=extra_routes,
            ws_idle_close_s=ws_idle_close_s,
        )
        self._config = Config()
        self._config.bind = [_bind(http.host, http.port)]
        self._config.accesslog = None
        self._config.errorlog = None
        self._config.graceful_timeout = graceful_timeout_s
        self._config.websocket_max_message_size = http.max_body_bytes
        # No Hypercorn pings: its ping task outlives the socket by up to one interval and holds
        # up graceful shutdown. Idle sockets are closed by the app instead (see chat_ws).
        self._config.websocket_ping_interval = None
        self._config.h11_max_incomplete_size = 16 * 1024
        self.url: str | None = None

    def shutdown(self) -> None:
        """Start a graceful stop; `run` returns once connections are closed."""
        self._draining.set()

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(self._serve)
            self.url = binds[0]
            _log.info("chat_server_listening", url=self.url)
            task_status.started(self.url)
        _log.info("chat_server_stopped")

    async def _serve(self, *, task_status: trio.TaskStatus[list[str]]) -> None:
        await serve(
            self.app,  # type: ignore[arg-type]
            self._config,
            shutdown_trigger=self._draining.wait,
            task_status=task_status,
        )
