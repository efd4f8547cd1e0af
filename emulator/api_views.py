"""App Home: `views.publish`, the `app_home_opened` event and clicks in a Home tab.

Owns publishing a user's Home tab (the workspace keeps the last view per user, as Slack does, with
its id and hash, and counts the publishes) and the routes only Slack's UI can drive:

    GET  /_emu/home?user=<id>        {"ok", "user", "view": {...} | null, "published": n}
    POST /_emu/home/open             {"user", "tab"?: "home"} -> `app_home_opened` to the app
    POST /_emu/home/click            {"user", "action_id"} -> `block_actions` from the Home view

`views.publish` (bot tokens only) validates the view like Slack: a `home` view with at most 100
blocks, each checked by `blocks.validate_blocks`; a stale `hash` is `hash_conflict`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator import payloads
from emulator.blocks import MAX_BLOCKS, find_action, validate_blocks
from emulator.errors import SlackError
from emulator.web_args import Call
from emulator.workspace import User, Workspace

__all__ = ["HANDLERS", "app_home_opened", "home_click", "home_routes", "views_publish"]

MAX_HOME_BLOCKS = 100


def _check_view(view: Any) -> dict[str, Any]:
    if not isinstance(view, dict) or view.get("type") != "home":
        raise SlackError("invalid_arguments", detail="view must be an object of type home")
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        raise SlackError("invalid_arguments", detail="view.blocks must be a list")
    if len(blocks) > MAX_HOME_BLOCKS:
        raise SlackError("invalid_arguments", detail=f"at most {MAX_HOME_BLOCKS} blocks")
    for start in range(0, len(blocks), MAX_BLOCKS):  # validate_blocks caps messages at 50
        validate_blocks(blocks[start : start + MAX_BLOCKS])
    return view


def views_publish(call: Call) -> dict[str, Any]:
    if call.actor.kind != "bot":
        raise SlackError("not_allowed_token_type")
    user = call.ws.user(call.args.get_str("user_id"))
    view = _check_view(call.args.get_json("view", error="invalid_arguments"))
    ws = call.ws
    wanted_hash = call.args.get_str("hash")
    current = ws.home_views.get(user.id)
    if wanted_hash and current is not None and current.get("hash") != wanted_hash:
        raise SlackError("hash_conflict")
    stored = {
        "id": current["id"] if current else call.ws.new_id("V"),
        "team_id": call.ws.team_id,
        "app_id": call.ws.app_id,
        "bot_id": call.ws.bot.bot_id,
        "private_metadata": "",
        "callback_id": "",
        "external_id": "",
        "state": {"values": {}},
        **view,
        "hash": f"{call.ws.now()}.{secrets.token_hex(4)}",
    }
    ws.home_views[user.id] = stored
    ws.home_publishes[user.id] = ws.home_publishes.get(user.id, 0) + 1
    ws.touch()
    return {"ok": True, "view": stored}


HANDLERS: dict[str, Callable[[Call], dict[str, Any]]] = {"views.publish": views_publish}


# --- what only Slack's UI does ------------------------------------------------------------------


def app_home_opened(ws: Workspace, user: User, tab: str) -> dict[str, Any]:
    """The `app_home_opened` event: `channel` is the user's DM with the app."""
    dm = ws.open_im(ws.bot, user)
    event: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user.id,
        "channel": dm.id,
        "tab": tab,
        "event_ts": ws.new_ts(),
    }
    view = ws.home_views.get(user.id)
    if view is not None and tab == "home":
        event["view"] = view
    return event


def home_click(
    ws: Workspace, user: User, view: dict[str, Any], action_id: str, trigger: str
) -> dict[str, Any]:
    """A `block_actions` payload for a button of a published Home view."""
    block_id, element = find_action(view.get("blocks"), action_id)
    action = {
        "action_id": action_id,
        "block_id": block_id,
        "type": element.get("type"),
        "action_ts": ws.new_ts(),
    }
    for key in ("text", "value", "style"):
        if key in element:
            action[key] = element[key]
    return {
        "type": "block_actions",
        "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": ws.team_id},
        "api_app_id": ws.app_id,
        "token": ws.verification_token,
        "container": {"type": "view", "view_id": view.get("id")},
        "trigger_id": trigger,
        "team": {"id": ws.team_id, "domain": ws.team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "view": view,
        "actions": [action],
    }


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise SlackError("invalid_json") from None
    if not isinstance(body, dict):
        raise SlackError("invalid_json", detail="the body must be a JSON object")
    return body


def _human(ws: Workspace, user_id: Any) -> User:
    if not isinstance(user_id, str):
        raise SlackError("invalid_arguments", detail="user must be an id")
    user = ws.user(user_id)
    if user.is_bot:
        raise SlackError("user_not_found")
    return user


def home_routes(
    ws: Workspace,
    *,
    send_event: Callable[[dict[str, Any]], None],
    send_interaction: Callable[[dict[str, Any]], None],
) -> list[Route]:
    """The /_emu/home routes; `send_event` / `send_interaction` deliver to the app."""

    def guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def run(request: Request) -> Response:
            try:
                return JSONResponse(await handler(request))
            except SlackError as e:
                return JSONResponse(e.body(), status_code=e.status)

        return run

    async def get_home(request: Request) -> dict[str, Any]:
        user = _human(ws, request.query_params.get("user"))
        return {
            "ok": True,
            "user": user.id,
            "view": ws.home_views.get(user.id),
            "published": ws.home_publishes.get(user.id, 0),
        }

    async def open_home(request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        user = _human(ws, body.get("user"))
        tab = body.get("tab", "home")
        if tab not in ("home", "messages"):
            raise SlackError("invalid_arguments", detail="tab is home or messages")
        send_event(app_home_opened(ws, user, tab))
        return {"ok": True}

    async def click_home(request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        user = _human(ws, body.get("user"))
        action_id = body.get("action_id")
        view = ws.home_views.get(user.id)
        if view is None:
            raise SlackError("view_not_found")
        if not isinstance(action_id, str):
            raise SlackError("action_not_found")
        trigger = payloads.trigger_id()
        payload = home_click(ws, user, view, action_id, trigger)
        send_interaction(payload)
        user.last_activity = ws.now()
        return {"ok": True, "trigger_id": trigger}

    return [
        Route("/_emu/home", guarded(get_home), methods=["GET"]),
        Route("/_emu/home/open", guarded(open_home), methods=["POST"]),
        Route("/_emu/home/click", guarded(click_home), methods=["POST"]),
    ]
