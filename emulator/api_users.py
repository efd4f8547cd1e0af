"""Web API methods about identity and presence: auth.test, users.*, apps.connections.open,
rtm.connect (views.publish is in api_views). Decode arguments, apply workspace rules, shape Slack's responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator.web_args import Call, page

__all__ = ["HANDLERS"]


def auth_test(call: Call) -> dict[str, Any]:
    user = call.actor.user
    out: dict[str, Any] = {
        "ok": True,
        "url": f"{call.base_url}/",
        "team": call.ws.team_name,
        "user": user.name,
        "team_id": call.ws.team_id,
        "user_id": user.id,
        "is_enterprise_install": False,
    }
    if call.actor.kind == "bot":
        out["bot_id"] = user.bot_id
    return out


def users_info(call: Call) -> dict[str, Any]:
    user = call.ws.user(call.args.get_str("user"))
    return {"ok": True, "user": user.to_json(call.ws.team_id)}


def users_list(call: Call) -> dict[str, Any]:
    everyone = [u.to_json(call.ws.team_id) for u in call.ws.users.values()]
    chunk, cursor = page(
        everyone, call.args.get_int("limit", 0), call.args.get_str("cursor") or None
    )
    return {
        "ok": True,
        "members": chunk,
        "cache_ts": call.ws.now(),
        "response_metadata": {"next_cursor": cursor},
    }


def get_presence(call: Call) -> dict[str, Any]:
    wanted = call.args.get_str("user")
    user = call.ws.user(wanted) if wanted else call.actor.user
    out: dict[str, Any] = {"ok": True, "presence": user.presence}
    if user.id == call.actor.user.id:
        out.update(
            online=user.presence == "active",
            auto_away=False,
            manual_away=user.manual_away,
            connection_count=1 if user.presence == "active" else 0,
            last_activity=user.last_activity,
        )
    return out


def set_presence(call: Call) -> dict[str, Any]:
    call.ws.set_presence(call.actor.user, call.args.get_str("presence") or "")
    return {"ok": True}


def profile_get(call: Call) -> dict[str, Any]:
    wanted = call.args.get_str("user")
    user = call.ws.user(wanted) if wanted else call.actor.user
    return {"ok": True, "profile": user.profile(call.ws.team_id)}


def connections_open(call: Call) -> dict[str, Any]:
    return {"ok": True, "url": call.links.socket_mode_url(call.base_url)}


def rtm_connect(call: Call) -> dict[str, Any]:
    user = call.actor.user
    url = call.links.rtm_url(
        call.base_url, user.id, batch_presence_aware=call.args.get_bool("batch_presence_aware")
    )
    return {
        "ok": True,
        "url": url,
        "team": {"id": call.ws.team_id, "name": call.ws.team_name, "domain": call.ws.team_domain},
        "self": {"id": user.id, "name": user.name},
    }


HANDLERS: dict[str, Callable[[Call], dict[str, Any]]] = {
    "auth.test": auth_test,
    "users.info": users_info,
    "users.list": users_list,
    "users.getPresence": get_presence,
    "users.setPresence": set_presence,
    "users.profile.get": profile_get,
    "apps.connections.open": connections_open,
    "rtm.connect": rtm_connect,
}
