"""The /_emu/ routes: what only Slack's UI can do, inspection, faults, and the agent console.

    GET  /_emu/                 the agent console (plain HTML/JS, no build step)
    GET  /_emu/app              credentials and Events API URLs;  POST sets the URLs at runtime
    GET  /_emu/users            humans with their tokens;         POST adds one
    POST /_emu/click            {"user","channel","ts","action_id"} -> block_actions to the app
    POST /_emu/command          {"user","channel","command","text"?} -> slash command to the app
    GET  /_emu/messages         ?channel=<id>[&user=<id> adds that user's ephemerals], oldest first
    GET  /_emu/channels         every conversation, DMs and archived ones included
    GET/POST /_emu/faults       chaos knobs (see `faults`)
    GET  /_emu/stats            counters of the Web API, Socket Mode, RTM and Events API delivery
    GET  /_emu/changes          ?since=<version>&wait=<s>: long-poll for the console
    POST /_emu/respond/<token>  the response_url of interactions and commands

Refusals are `{"ok": false, "error": code}` with a 4xx status.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import trio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator.config import USER_NAME, ConfigError, check_url
from emulator.delivery import AppRouter, ChangeFeed, Targets
from emulator.errors import SlackError
from emulator.faults import Faults, parse_request
from emulator.rate_tiers import RateLimiter
from emulator.workspace import Workspace

__all__ = ["EmuRoutes"]

Handler = Callable[[Request], Awaitable[Response]]
_ASSETS = {
    "": ("index.html", "text/html"),
    "console.js": ("console.js", "text/javascript"),
    "console.css": ("console.css", "text/css"),
}


def _guard(handler: Handler) -> Handler:
    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except SlackError as e:
            return JSONResponse(e.body(), status_code=e.status)

    return guarded


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise SlackError("invalid_json") from None
    if not isinstance(body, dict):
        raise SlackError("invalid_json", detail="the body must be a JSON object")
    return body


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


class EmuRoutes:
    def __init__(
        self,
        ws: Workspace,
        *,
        router: AppRouter,
        faults: Faults,
        limiter: RateLimiter,
        targets: Targets,
        feed: ChangeFeed,
        stats: Callable[[], dict[str, Any]],
    ) -> None:
        self.ws = ws
        self.router = router
        self.faults = faults
        self.limiter = limiter
        self.targets = targets
        self.feed = feed
        self.stats = stats
        folder = resources.files("emulator") / "console"
        self._assets = {
            path: (folder.joinpath(name).read_bytes(), kind)
            for path, (name, kind) in _ASSETS.items()
        }

    def routes(self) -> list[Route]:
        g = _guard
        return [
            Route("/_emu/", self.asset, methods=["GET"]),
            Route("/_emu/console.js", self.asset, methods=["GET"]),
            Route("/_emu/console.css", self.asset, methods=["GET"]),
            Route("/_emu/app", g(self.get_app), methods=["GET"]),
            Route("/_emu/app", g(self.post_app), methods=["POST"]),
            Route("/_emu/users", g(self.get_users), methods=["GET"]),
            Route("/_emu/users", g(self.post_users), methods=["POST"]),
            Route("/_emu/click", g(self.click), methods=["POST"]),
            Route("/_emu/command", g(self.command), methods=["POST"]),
            Route("/_emu/messages", g(self.messages), methods=["GET"]),
            Route("/_emu/channels", g(self.channels), methods=["GET"]),
            Route("/_emu/faults", g(self.get_faults), methods=["GET"]),
            Route("/_emu/faults", g(self.post_faults), methods=["POST"]),
            Route("/_emu/stats", g(self.get_stats), methods=["GET"]),
            Route("/_emu/changes", g(self.changes), methods=["GET"]),
            Route("/_emu/respond/{token}", g(self.respond), methods=["POST"]),
        ]

    async def asset(self, request: Request) -> Response:
        body, kind = self._assets[request.url.path.removeprefix("/_emu/")]
        return Response(body, media_type=kind, headers={"Cache-Control": "no-store"})

    # app ------------------------------------------------------------------------------------

    def _app(self) -> dict[str, Any]:
        ws = self.ws
        return {
            "ok": True,
            "bot_token": ws.bot.token,
            "app_token": ws.app_token,
            "signing_secret": ws.signing_secret,
            "bot_user_id": ws.bot.id,
            "team_id": ws.team_id,
            "app_id": ws.app_id,
            "app_name": ws.app_name,
            "bot_id": ws.bot.bot_id,
            "verification_token": ws.verification_token,
            **dataclasses.asdict(self.targets),
        }

    async def get_app(self, request: Request) -> Response:
        return JSONResponse(self._app())

    async def post_app(self, request: Request) -> Response:
        body = await _json(request)
        fields = {f.name for f in dataclasses.fields(Targets)}
        if unknown := set(body) - fields:
            raise SlackError("invalid_request", detail=f"unknown field(s): {sorted(unknown)}")
        for key, value in body.items():
            try:
                check_url(key, value)
            except ConfigError as e:
                raise SlackError("invalid_request", detail=str(e)) from None
        for key, value in body.items():
            setattr(self.targets, key, value)
        return JSONResponse(self._app())

    # users ----------------------------------------------------------------------------------

    def _user(self, user_id: str) -> dict[str, Any]:
        u = self.ws.users[user_id]
        return {
            "id": u.id,
            "name": u.name,
            "token": u.token,
            "presence": u.presence,
            "real_name": u.real_name,
            "title": u.title,
        }

    async def get_users(self, request: Request) -> Response:
        return JSONResponse({"users": [self._user(u.id) for u in self.ws.humans()]})

    async def post_users(self, request: Request) -> Response:
        body = await _json(request)
        name, real_name, title = body.get("name"), body.get("real_name", ""), body.get("title", "")
        if not isinstance(name, str) or not USER_NAME.match(name):
            raise SlackError(
                "invalid_name", detail="name: lowercase letters, digits, '.', '_' or '-'"
            )
        if not isinstance(real_name, str) or not isinstance(title, str):
            raise SlackError("invalid_arguments", detail="real_name and title must be strings")
        user = self.ws.add_user(name, real_name=real_name, title=title)
        general = self.ws.channels.get(self.ws.names.get("general", ""))
        if general is not None:
            general.members.append(user.id)
        self.router.settle()
        return JSONResponse({"ok": True, **self._user(user.id)})

    # actions --------------------------------------------------------------------------------

    async def click(self, request: Request) -> Response:
        body = await _json(request)
        try:
            result = self.router.click(
                _base(request),
                body.get("user"),
                body.get("channel"),
                body.get("ts"),
                body.get("action_id"),
            )
        finally:
            self.router.settle()
        return JSONResponse(result)

    async def command(self, request: Request) -> Response:
        body = await _json(request)
        try:
            result = self.router.command(
                _base(request),
                body.get("user"),
                body.get("channel"),
                body.get("command"),
                body.get("text"),
            )
        finally:
            self.router.settle()
        return JSONResponse(result)

    async def respond(self, request: Request) -> Response:
        if request.headers.get("content-type", "").startswith("application/json"):
            body: Any = await _json(request)
        else:
            raw = await request.body()
            body = raw.decode("utf-8", errors="replace")
        self.router.respond(request.path_params["token"], body)
        return JSONResponse({"ok": True})

    # inspection -----------------------------------------------------------------------------

    async def messages(self, request: Request) -> Response:
        channel = self.ws.channels.get(request.query_params.get("channel", ""))
        if channel is None:
            raise SlackError("channel_not_found")
        rows = []
        for m in channel.messages:
            row: dict[str, Any] = {"ts": m.ts, "user": m.user, "text": m.text}
            for key in (
                "blocks",
                "username",
                "icon_url",
                "icon_emoji",
                "bot_id",
                "edited",
                "metadata",
                "thread_ts",
            ):
                if getattr(m, key) is not None:
                    row[key] = getattr(m, key)
            if m.pinned:
                row["pinned"] = True
            rows.append(row)
        viewer = request.query_params.get("user")
        if viewer:
            for note in self.ws.ephemerals:
                if note.channel == channel.id and note.user == viewer:
                    m = note.message
                    row = {"ts": m.ts, "user": m.user, "text": m.text, "ephemeral": True}
                    if m.blocks is not None:
                        row["blocks"] = m.blocks
                    rows.append(row)
            rows.sort(key=lambda r: float(r["ts"]))
        return JSONResponse({"messages": rows})

    async def channels(self, request: Request) -> Response:
        rows = [
            {
                "id": c.id,
                "name": c.name,
                "is_im": c.is_im,
                "is_mpim": c.is_mpim,
                "is_private": c.is_private,
                "is_archived": c.is_archived,
                "members": list(c.members),
                "created": c.created,
                "pins": [m.ts for m in c.messages if m.pinned],
            }
            for c in self.ws.channels.values()
        ]
        return JSONResponse({"channels": rows})

    async def get_faults(self, request: Request) -> Response:
        return JSONResponse({"ok": True, "faults": self.faults.to_json()})

    async def post_faults(self, request: Request) -> Response:
        fault = parse_request(await _json(request))
        was = self.faults.rate_limits
        self.faults.apply(fault)
        if self.faults.rate_limits != was:
            self.limiter.reset()
        out: dict[str, Any] = {"ok": True, "faults": self.faults.to_json()}
        if fault.drop_sockets in ("all", "socket_mode"):
            out["dropped_socket_mode"] = self.router.socket_mode.drop()
        if fault.drop_sockets in ("all", "rtm"):
            out["dropped_rtm"] = self.router.rtm.drop()
        if fault.disconnect is not None:
            out["disconnected"] = self.router.socket_mode.disconnect(fault.disconnect)
        return JSONResponse(out)

    async def get_stats(self, request: Request) -> Response:
        return JSONResponse({"ok": True, "version": self.ws.version, **self.stats()})

    async def changes(self, request: Request) -> Response:
        try:
            since = int(request.query_params.get("since", "0"))
            wait = min(max(float(request.query_params.get("wait", "25")), 0.0), 60.0)
        except ValueError:
            raise SlackError(
                "invalid_arguments", detail="since must be an integer, wait a number"
            ) from None
        version = self.ws.version
        with trio.move_on_after(wait):
            version = await self.feed.wait_beyond(since)
        return JSONResponse({"version": version})
