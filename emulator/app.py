"""The emulator as one service: the workspace, its hubs and the Starlette app, served by Hypercorn.

Owns composition (seeding the workspace from `EmulatorConfig`, wiring the Web API, Socket Mode,
RTM, Events API delivery and the /_emu/ routes) and the service's life: `run()` follows trio's
start protocol and reports the base URL once the socket is bound; cancelling it stops everything.
"""

from __future__ import annotations

import dataclasses
import logging
from functools import partial
from typing import Any

import structlog
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from emulator.api_views import home_routes
from emulator.asgi_front import Front
from emulator.config import Credentials, EmulatorConfig
from emulator.console_routes import EmuRoutes
from emulator.delivery import AppRouter, ChangeFeed, Targets
from emulator.events_http import HttpDelivery
from emulator.faults import Faults
from emulator.messages import Content, post
from emulator.rate_tiers import RateLimiter
from emulator.rtm import RtmHub
from emulator.socket_mode import SocketModeHub
from emulator.web_api import WebApi
from emulator.workspace import Channel, Principal, User, Workspace
from emulator.wsio import StarletteSocket

__all__ = ["Emulator"]

log = structlog.get_logger("emulator")


class Emulator:
    """A Slack workspace in a box. `await nursery.start(emu.run)` returns its base URL."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        ws = self.workspace = Workspace(
            team_name=config.team_name,
            app_name=config.app_name,
            bot_token=config.bot_token,
            app_token=config.app_token,
            signing_secret=config.signing_secret,
        )
        humans = [ws.add_user(a.name, real_name=a.real_name, title=a.title) for a in config.agents]
        ws.add_channel(
            Channel(
                id=ws.new_id("C"),
                name="general",
                created=ws.now(),
                creator=humans[0].id if humans else ws.bot.id,
                members=[u.id for u in humans],
            )
        )
        self.credentials = Credentials(
            bot_token=ws.bot.token,
            app_token=ws.app_token,
            signing_secret=ws.signing_secret,
            bot_user_id=ws.bot.id,
            team_id=ws.team_id,
            app_id=ws.app_id,
            bot_id=ws.bot.bot_id or "",
        )
        self.faults = Faults(rate_limits=config.rate_limits)
        self.limiter = RateLimiter()
        self.socket_mode = SocketModeHub(
            app_id=ws.app_id, ack_timeout_s=config.ack_timeout_s, max_retries=config.max_retries
        )
        self.rtm = RtmHub(ws, self._rtm_post)
        self.http = HttpDelivery(ws.signing_secret)
        self.targets = Targets(config.events_url, config.interactivity_url, config.commands_url)
        self.feed = ChangeFeed(ws)
        self.router = AppRouter(
            ws,
            socket_mode=self.socket_mode,
            rtm=self.rtm,
            http=self.http,
            targets=self.targets,
            feed=self.feed,
        )
        self.web_api = WebApi(
            ws, faults=self.faults, limiter=self.limiter, links=self, after_call=self.router.settle
        )
        emu_routes = EmuRoutes(
            ws,
            router=self.router,
            faults=self.faults,
            limiter=self.limiter,
            targets=self.targets,
            feed=self.feed,
            stats=self.statistics,
        )
        self.starlette = Starlette(
            routes=[
                Route("/", self._home),
                Route("/api/{method:str}", self.web_api.endpoint, methods=["GET", "POST"]),
                WebSocketRoute("/link/", self._socket_mode_endpoint),
                WebSocketRoute("/rtm/", self._rtm_endpoint),
                *emu_routes.routes(),
                *home_routes(
                    ws,
                    send_event=self.router.send_event,
                    send_interaction=self.router.send_interaction,
                ),
            ]
        )
        self.app = Front(self.web_api, self.starlette)  # what the server runs
        self.base_url: str | None = None

    # Links: where the WebSocket endpoints are ----------------------------------------------

    def socket_mode_url(self, base_url: str) -> str:
        return self.socket_mode.socket_mode_url(base_url)

    def rtm_url(self, base_url: str, user_id: str, *, batch_presence_aware: bool) -> str:
        return self.rtm.rtm_url(base_url, user_id, batch_presence_aware=batch_presence_aware)

    # endpoints ------------------------------------------------------------------------------

    async def _home(self, request: Request) -> Response:
        return RedirectResponse("/_emu/")

    async def _socket_mode_endpoint(self, websocket: WebSocket) -> None:
        if not self.socket_mode.take_ticket(websocket.query_params.get("ticket")):
            await websocket.close(code=1008)  # before accept: the handshake is refused
            return
        await websocket.accept()
        await self.socket_mode.serve(StarletteSocket(websocket))

    async def _rtm_endpoint(self, websocket: WebSocket) -> None:
        ticket = self.rtm.take_ticket(websocket.query_params.get("ticket"))
        if ticket is None:
            await websocket.close(code=1008)
            return
        await websocket.accept()
        await self.rtm.serve(StarletteSocket(websocket), *ticket)

    def _rtm_post(self, user: User, channel: str, text: str) -> str:
        actor = Principal(user, "bot" if user.is_bot else "user")
        try:
            _, message = post(self.workspace, actor, channel, Content(text=text))
        finally:
            self.router.settle()
        return message.ts

    # life -----------------------------------------------------------------------------------

    def statistics(self) -> dict[str, Any]:
        return {
            "web_api": dataclasses.asdict(self.web_api.statistics()),
            "socket_mode": dataclasses.asdict(self.socket_mode.statistics()),
            "rtm": dataclasses.asdict(self.rtm.statistics()),
            "events_api": dataclasses.asdict(self.http.statistics()),
        }

    def _hypercorn_config(self) -> HypercornConfig:
        config = HypercornConfig()
        host = self.config.host
        config.bind = [
            f"[{host}]:{self.config.port}" if ":" in host else f"{host}:{self.config.port}"
        ]
        config.accesslog = None
        config.errorlog = logging.getLogger("emulator.hypercorn")
        config.graceful_timeout = 1.0
        return config

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.socket_mode.run)
            await nursery.start(self.http.run)
            server = partial(serve, self.app, self._hypercorn_config())  # type: ignore[arg-type]
            binds: list[str] = await nursery.start(server)
            base_url = (
                binds[0]
                .replace("://0.0.0.0:", "://127.0.0.1:")
                .replace("://[::]:", "://127.0.0.1:")
            )
            self.base_url = base_url
            log.info(
                "emulator_started",
                url=base_url,
                console=f"{base_url}/_emu/",
                team_id=self.workspace.team_id,
            )
            task_status.started(base_url)
