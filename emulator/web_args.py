"""Decoding a Web API call: body formats, the token, typed arguments, cursors, the call context.

Owns what Slack accepts on /api/<method>: GET query strings, POST form bodies and POST JSON bodies
(whose token must travel in the Authorization header), and the errors for malformed ones
(`invalid_json`, `json_not_object`, `invalid_form_data`, `invalid_post_type`, `invalid_arguments`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl

from emulator.errors import SlackError
from emulator.workspace import Principal, Workspace

__all__ = ["Args", "Call", "Links", "decode_body", "page", "token_of"]

T = TypeVar("T")
MAX_BODY = 2 * 1024 * 1024


def decode_body(content_type: str, body: bytes) -> tuple[dict[str, Any], bool]:
    """Decode a POST body into arguments; returns them and whether the body was JSON."""
    if len(body) > MAX_BODY:
        raise SlackError("request_too_large")
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/json":
        if not body.strip():
            return {}, True
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise SlackError("invalid_json") from None
        if not isinstance(data, dict):
            raise SlackError("json_not_object")
        return data, True
    if kind in ("application/x-www-form-urlencoded", "", "text/plain"):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise SlackError("invalid_charset") from None
        try:
            return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=False)), False
        except ValueError:
            raise SlackError("invalid_form_data") from None
    raise SlackError("invalid_post_type")


def token_of(authorization: str | None, args: Mapping[str, Any], *, json_body: bool) -> str | None:
    """The token of a call: `Authorization: Bearer`, else a `token` argument (not in JSON bodies)."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    token = args.get("token")
    if json_body or not isinstance(token, str):
        return None
    return token or None


@dataclass(frozen=True, slots=True)
class Args:
    """Typed access to a call's arguments; a value of the wrong shape is `invalid_arguments`."""

    data: Mapping[str, Any]

    def get_str(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        raise SlackError("invalid_arguments", detail=f"{key} must be a string")

    def get_bool(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no", ""):
            return False
        raise SlackError("invalid_arguments", detail=f"{key} must be a boolean")

    def get_int(self, key: str, default: int, *, error: str = "invalid_arguments") -> int:
        value = self.data.get(key)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            raise SlackError(error)
        try:
            return int(value)
        except (TypeError, ValueError):
            raise SlackError(error) from None

    def get_json(self, key: str, *, error: str) -> Any:
        """A structured argument: JSON text (form bodies) or the value itself (JSON bodies)."""
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise SlackError(error) from None
        return value

    def get_ids(self, key: str) -> list[str]:
        """A comma-separated list of ids (or a JSON list of them)."""
        value = self.data.get(key)
        if value is None:
            return []
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            items = value
        elif isinstance(value, str):
            items = value.split(",")
        else:
            raise SlackError("invalid_arguments", detail=f"{key} must be a comma-separated list")
        return [item.strip() for item in items if item.strip()]


def page(
    items: Sequence[T], limit: int, cursor: str | None, *, max_limit: int = 1000
) -> tuple[list[T], str]:
    """Cursor pagination as Slack does it: returns the page and the next cursor ("" at the end)."""
    offset = 0
    if cursor:
        try:
            raw = base64.b64decode(cursor.encode(), validate=True).decode()
            kind, _, number = raw.partition(":")
            offset = int(number)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise SlackError("invalid_cursor") from None
        if kind != "offset" or offset < 0:
            raise SlackError("invalid_cursor")
    if limit <= 0:
        limit = max_limit
    limit = min(limit, max_limit)
    chunk = list(items[offset : offset + limit])
    more = offset + limit < len(items)
    next_cursor = base64.b64encode(f"offset:{offset + limit}".encode()).decode() if more else ""
    return chunk, next_cursor


class Links(Protocol):
    """Where the WebSocket endpoints are; implemented by the hubs that own their tickets."""

    def socket_mode_url(self, base_url: str) -> str: ...

    def rtm_url(self, base_url: str, user_id: str, *, batch_presence_aware: bool) -> str: ...


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated Web API call, as a method handler sees it."""

    ws: Workspace
    actor: Principal
    args: Args
    base_url: str
    links: Links
