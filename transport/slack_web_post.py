"""What makes a chat.postMessage safe to retry: a unique post id in its metadata, and the lookup.

Owns the ``takeover_post`` message metadata (``{"event_type": "takeover_post", "event_payload":
{"post_id": ...}}``), `PostIds` that stamps it on outgoing posts, `find_post` that pages through
``conversations.history`` (or ``conversations.replies`` for a thread reply) with
``include_all_metadata`` from a little before the first attempt, and the form encoding of
non-JSON Web API bodies. Pure helpers: the retry loop lives in `transport.slack_web`.

Reading the history needs the ``channels:history``, ``groups:history`` and ``im:history``
scopes, which the message.* event subscriptions require anyway.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from transport.slack_errors import SlackTransportError

__all__ = [
    "EVENT_TYPE",
    "LOOKUP_LIMIT",
    "LOOKUP_MARGIN_S",
    "LOOKUP_MAX_PAGES",
    "PendingPost",
    "PostIds",
    "find_post",
    "form_encode",
    "post_id_of",
    "post_ids_of",
]

EVENT_TYPE = "takeover_post"
LOOKUP_MARGIN_S = 60.0
"""How far before the first attempt the lookup starts: covers clock skew between us and Slack."""
LOOKUP_LIMIT = 20
LOOKUP_MAX_PAGES = 10

_Call = Callable[[str, dict[str, Any], None, None], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class PendingPost:
    """A post in flight: where it goes, its id, and when (epoch seconds) its first attempt began."""

    channel: str
    post_id: str
    started_at: float
    params: dict[str, Any]

    @property
    def thread_ts(self) -> str | None:
        ts = self.params.get("thread_ts")
        return ts if isinstance(ts, str) and ts else None


class PostIds:
    """Makes post ids unique across processes: a random prefix per client and a counter."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(6) + "-"
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter)}"

    def stamp(self, params: dict[str, Any], post_id: str | None) -> tuple[dict[str, Any], str]:
        """Put the post id into `params["metadata"]` (keeping any metadata the caller gave)."""
        metadata = params.get("metadata")
        if metadata is None:
            pid = post_id or self.next()
            params["metadata"] = {"event_type": EVENT_TYPE, "event_payload": {"post_id": pid}}
            return params, pid
        if isinstance(metadata, str):
            try:
                metadata = json.loads(metadata)
            except ValueError:
                metadata = None
        if not isinstance(metadata, dict):
            raise ValueError("chat.postMessage metadata must be a JSON object")
        payload = metadata.get("event_payload")
        payload = payload if isinstance(payload, dict) else {}
        existing = payload.get("post_id")
        pid = post_id or (existing if isinstance(existing, str) and existing else self.next())
        params["metadata"] = {
            **metadata,
            "event_type": metadata.get("event_type") or EVENT_TYPE,
            "event_payload": {**payload, "post_id": pid},
        }
        return params, pid


def post_id_of(message: object) -> str | None:
    """The post id a Slack message carries in its metadata, if any."""
    payload = _payload_of(message)
    post_id = payload.get("post_id")
    return post_id if isinstance(post_id, str) else None


def post_ids_of(message: object) -> set[str]:
    """Every post id a message stands for: its own, and those of the lines merged into it
    (`event_payload.merged`, see `transport.slack_relay`)."""
    payload = _payload_of(message)
    merged = payload.get("merged")
    ids = {m for m in merged if isinstance(m, str)} if isinstance(merged, list) else set()
    own = payload.get("post_id")
    return ids | {own} if isinstance(own, str) else ids


def _payload_of(message: object) -> dict[str, Any]:
    metadata = message.get("metadata") if isinstance(message, dict) else None
    payload = metadata.get("event_payload") if isinstance(metadata, dict) else None
    return payload if isinstance(payload, dict) else {}


async def find_post(
    call: _Call, channel: str, post_id: str, oldest: float, thread_ts: str | None
) -> dict[str, Any] | None:
    """Page through the channel (or thread) since `oldest` for the message carrying `post_id`.

    Returns a chat.postMessage-shaped answer for the message found, or None when the whole
    window was read without finding it. Raises `SlackError` when Slack cannot be read.
    """
    method = "conversations.replies" if thread_ts else "conversations.history"
    params: dict[str, Any] = {
        "channel": channel,
        "oldest": f"{max(0.0, oldest):.6f}",
        "inclusive": True,
        "include_all_metadata": True,
        "limit": LOOKUP_LIMIT,
    }
    if thread_ts:
        params["ts"] = thread_ts
    for _ in range(LOOKUP_MAX_PAGES):
        page = await call(method, dict(params), None, None)
        messages = page.get("messages")
        for message in messages if isinstance(messages, list) else ():
            if post_id in post_ids_of(message):
                return {"ok": True, "channel": channel, "ts": message.get("ts"), "message": message}
        metadata = page.get("response_metadata")
        cursor = metadata.get("next_cursor") if isinstance(metadata, dict) else None
        if not page.get("has_more") or not cursor:
            return None
        params["cursor"] = cursor
    raise SlackTransportError(method, f"more than {LOOKUP_MAX_PAGES} pages to search")


def form_encode(params: dict[str, Any]) -> bytes:
    """A form body: booleans as true/false, lists and dicts as JSON, None left out."""
    return urlencode(
        [(key, _form_value(value)) for key, value in params.items() if value is not None]
    ).encode()


def _form_value(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
