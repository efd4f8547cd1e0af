"""Events API routes: signatures and their 5-minute window, url_verification, queueing, retries."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import trio
from starlette.applications import Starlette

from transport.slack_decode import InboundRequest
from transport.slack_http import SlackHttp
from transport.slack_signature import slack_signature

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_700_000_000.0


class Queue:
    def __init__(self, room: int = 100) -> None:
        self.items: list[InboundRequest] = []
        self.room = room

    def submit_nowait(self, item: InboundRequest) -> None:
        if len(self.items) >= self.room:
            raise trio.WouldBlock
        self.items.append(item)


def client(queue: Queue, **kwargs: Any) -> tuple[httpx.AsyncClient, SlackHttp]:
    http = SlackHttp(SECRET, queue, wall_clock=lambda: NOW, **kwargs)
    app = Starlette(routes=http.routes())
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://app.test"), http


def signed(body: bytes, *, at: float = NOW, secret: str = SECRET, **extra: str) -> dict[str, str]:
    timestamp = str(int(at))
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": slack_signature(secret, timestamp, body),
        **extra,
    }


def event(event_id: str = "Ev1") -> bytes:
    payload = {
        "type": "event_callback",
        "event_id": event_id,
        "event": {"type": "message", "channel": "G1", "user": "U1", "text": "hi", "ts": "1.2"},
    }
    return json.dumps(payload).encode()


async def post(
    c: httpx.AsyncClient, path: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    return await c.post(path, content=body, headers=headers)


async def test_url_verification_is_answered_with_the_challenge() -> None:
    body = json.dumps({"type": "url_verification", "challenge": "3eZbrw1aB", "token": "x"}).encode()
    queue = Queue()
    c, _ = client(queue)
    async with c:
        response = await post(c, "/slack/events", body, signed(body))
    assert response.status_code == 200 and response.json() == {"challenge": "3eZbrw1aB"}
    assert queue.items == []


async def test_a_signed_event_is_queued_and_answered_at_once() -> None:
    queue = Queue()
    c, _ = client(queue)
    async with c:
        response = await post(c, "/slack/events", event(), signed(event()))
    assert response.status_code == 200
    (item,) = queue.items
    assert (item.kind, item.source, item.payload["event_id"]) == ("events_api", "http", "Ev1")


@pytest.mark.parametrize(
    "headers",
    [
        signed(event() + b" "),  # signed over another body: tampered
        signed(event(), secret="another-secret"),
        signed(event(), at=NOW - 301),  # replayed after the five-minute window
        signed(event(), at=NOW + 301),
        {},
        {"X-Slack-Request-Timestamp": str(int(NOW)), "X-Slack-Signature": "v0=zz"},
        {"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=zz"},
    ],
)
async def test_unsigned_tampered_or_stale_requests_get_401(headers: dict[str, str]) -> None:
    queue = Queue()
    c, http = client(queue)
    async with c:
        for path in ("/slack/events", "/slack/interactivity", "/slack/commands"):
            response = await post(c, path, event(), headers)
            assert response.status_code == 401
            assert response.json() == {"ok": False, "error": "invalid_signature"}
    assert queue.items == [] and http.refused == 3


async def test_the_window_edge_is_still_accepted() -> None:
    queue = Queue()
    c, _ = client(queue)
    async with c:
        response = await post(c, "/slack/events", event(), signed(event(), at=NOW - 300))
    assert response.status_code == 200 and len(queue.items) == 1


async def test_slacks_retries_of_a_queued_event_are_dropped() -> None:
    queue = Queue()
    c, http = client(queue)
    async with c:
        first = await post(c, "/slack/events", event("Ev1"), signed(event("Ev1")))
        retry = signed(
            event("Ev1"), **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        )
        again = await post(c, "/slack/events", event("Ev1"), retry)
        other = await post(c, "/slack/events", event("Ev2"), signed(event("Ev2")))
    assert [first.status_code, again.status_code, other.status_code] == [200, 200, 200]
    assert [i.payload["event_id"] for i in queue.items] == ["Ev1", "Ev2"]
    assert http.retries_dropped == 1


async def test_a_full_queue_answers_503_and_slacks_retry_is_taken_later() -> None:
    queue = Queue(room=0)
    c, _ = client(queue)
    async with c:
        busy = await post(c, "/slack/events", event(), signed(event()))
        queue.room = 1
        retry = await post(
            c, "/slack/events", event(), signed(event(), **{"X-Slack-Retry-Num": "1"})
        )
    assert (busy.status_code, retry.status_code) == (503, 200)
    assert len(queue.items) == 1


async def test_interactions_come_as_a_form_field_holding_json() -> None:
    payload = {"type": "block_actions", "user": {"id": "U1"}, "actions": []}
    body = urlencode({"payload": json.dumps(payload)}).encode()
    queue = Queue()
    c, _ = client(queue)
    async with c:
        headers = signed(body, **{"Content-Type": "application/x-www-form-urlencoded"})
        response = await post(c, "/slack/interactivity", body, headers)
    assert response.status_code == 200
    (item,) = queue.items
    assert (item.kind, item.payload) == ("interactive", payload)


async def test_slash_commands_come_as_form_fields() -> None:
    fields = {"command": "/end-takeover", "text": "", "user_id": "U1", "channel_id": "G1"}
    body = urlencode(fields).encode()
    ssl = urlencode({"ssl_check": "1", "token": "x"}).encode()
    queue = Queue()
    c, _ = client(queue)
    async with c:
        response = await post(c, "/slack/commands", body, signed(body))
        check = await post(c, "/slack/commands", ssl, signed(ssl))
    assert response.status_code == check.status_code == 200
    assert response.content == b""  # nothing shown to the user: the room tells them
    (item,) = queue.items
    assert (item.kind, dict(item.payload)) == ("slash_commands", fields)


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        ("/slack/events", b"not json", "invalid_json"),
        ("/slack/events", b"[1, 2]", "invalid_json"),
        ("/slack/events", b'{"type": "url_verification"}', "invalid_challenge"),
        ("/slack/interactivity", b"payload=%7Bbroken", "invalid_json"),
        ("/slack/interactivity", b"nothing=here", "invalid_json"),
        ("/slack/commands", b"\xff\xfe", "invalid_form"),
    ],
)
async def test_malformed_signed_bodies_get_400(path: str, body: bytes, error: str) -> None:
    queue = Queue()
    c, _ = client(queue)
    async with c:
        response = await post(c, path, body, signed(body))
    assert (response.status_code, response.json()["error"]) == (400, error)
    assert queue.items == []


async def test_oversized_bodies_get_413_before_any_signature_work() -> None:
    queue = Queue()
    c, _ = client(queue, max_body_bytes=1_000)
    async with c:
        big = b"x" * 5_000
        response = await post(c, "/slack/events", big, signed(big))
    assert response.status_code == 413 and queue.items == []


def test_events_mode_needs_a_signing_secret() -> None:
    with pytest.raises(ValueError, match="signing secret"):
        SlackHttp("  ", Queue())
