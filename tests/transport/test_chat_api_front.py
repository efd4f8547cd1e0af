"""`ChatFront`, the hot routes on plain ASGI: the same answers as the Starlette routes behind it.

Every case is sent twice over the real domain: once as a client sends it (the front answers)
and once with a `root_path`, which the front hands to the Starlette app unchanged; status, body
and headers (in order) must be the same. Also: what the front leaves to Starlette, a bug's 500,
and `read_request_body` on its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import pytest

from actors.errors import UnknownSession
from actors.settings import HttpSettings
from tests.transport.chat_api_fixtures import HTTP, Chat, serving
from transport.chat_api import build_chat_app
from transport.chat_errors import Malformed, TooLarge
from transport.chat_limits import read_request_body

ROOT = "/behind-a-proxy"
Answer = tuple[int, Any, list[tuple[str, str]]]


@pytest.fixture
async def chat() -> AsyncIterator[Chat]:
    async with serving() as c:
        yield c


async def _both(
    chat: Chat, send: Callable[[httpx.AsyncClient, str, dict[str, str]], Awaitable[httpx.Response]]
) -> tuple[Answer, Answer]:
    """`send(client, session path prefix, session)` through the front, then through Starlette."""
    answers: list[Answer] = []
    transport = httpx.ASGITransport(app=chat.app, root_path=ROOT)
    async with httpx.AsyncClient(transport=transport, base_url="http://chat.test") as behind:
        for client, prefix in ((chat.client, ""), (behind, ROOT)):
            session = await chat.open()
            response = await send(client, prefix, session)
            body = response.json() if response.content else None
            answers.append((response.status_code, body, list(response.headers.multi_items())))
    return answers[0], answers[1]


def _messages(prefix: str, session: dict[str, str]) -> str:
    return f"{prefix}/api/sessions/{session['session_id']}/messages"


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b'{"text": "hello"}', {"authorization": "Bearer {token}"}, 202),
        (b'{"text": "hello"}', {}, 401),
        (b'{"text": "hello"}', {"authorization": "Bearer nope"}, 401),
        (b'{"text": "hello"}', {"authorization": "Basic {token}"}, 401),
        (b'{"text": ' + b"1" * 2000 + b"}", {"authorization": "Bearer {token}"}, 413),
        (b'{"text": "' + b"x" * 201 + b'"}', {"authorization": "Bearer {token}"}, 413),
        (b"{nope", {"authorization": "Bearer {token}"}, 400),
        (b"\xff\xfe", {"authorization": "Bearer {token}"}, 400),
        (b'{"text": "  "}', {"authorization": "Bearer {token}"}, 400),
        (b'{"text": 5}', {"authorization": "Bearer {token}"}, 400),
        (b'{"other": 1}', {"authorization": "Bearer {token}"}, 400),
        (b'["text"]', {"authorization": "Bearer {token}"}, 400),
    ],
)
async def test_a_message_is_answered_as_the_starlette_route_answers(
    chat: Chat, content: bytes, headers: dict[str, str], status: int
) -> None:
    async def send(client: httpx.AsyncClient, prefix: str, session: dict[str, str]) -> Any:
        filled = {k: v.format(token=session["token"]) for k, v in headers.items()}
        return await client.post(_messages(prefix, session), content=content, headers=filled)

    front, behind = await _both(chat, send)
    assert front[0] == status
    assert front == behind


async def test_unknown_closed_and_flooded_sessions_are_refused_alike(chat: Chat) -> None:
    async def unknown(client: httpx.AsyncClient, prefix: str, session: dict[str, str]) -> Any:
        return await client.post(
            f"{prefix}/api/sessions/s_nobody/messages",
            json={"text": "hi"},
            headers=chat.auth(session),
        )

    async def closed(client: httpx.AsyncClient, prefix: str, session: dict[str, str]) -> Any:
        await chat.client.post(
            f"/api/sessions/{session['session_id']}/close", headers=chat.auth(session)
        )
        return await client.post(
            _messages(prefix, session), json={"text": "hi"}, headers=chat.auth(session)
        )

    async def flooded(client: httpx.AsyncClient, prefix: str, session: dict[str, str]) -> Any:
        for _ in range(HTTP.messages_per_minute):
            ok = await client.post(
                _messages(prefix, session), json={"text": "hi"}, headers=chat.auth(session)
            )
            assert ok.status_code == 202
        return await client.post(
            _messages(prefix, session), json={"text": "hi"}, headers=chat.auth(session)
        )

    for send, status, code in (
        (unknown, 404, "unknown_session"),
        (closed, 409, "session_closed"),
        (flooded, 429, "rate_limited"),
    ):
        front, behind = await _both(chat, send)
        assert (front[0], front[1]["error"]) == (status, code)
        assert front == behind
    flood_headers = dict(front[2])
    assert flood_headers["retry-after"] == "12"  # 60 s / 5 messages, rounded up
    assert flood_headers["cache-control"] == "no-store"
    assert flood_headers["x-content-type-options"] == "nosniff"


async def test_what_the_front_leaves_to_starlette(chat: Chat) -> None:
    session = await chat.open()
    sid = session["session_id"]
    wrong_method = await chat.client.get(
        f"/api/sessions/{sid}/messages", headers=chat.auth(session)
    )
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "method_not_allowed"
    for path in (
        "/api/sessions//messages",
        f"/api/sessions/{sid}/x/messages",
        f"/api/sessions/{sid}/messages/x",
    ):
        missing = await chat.client.post(path, json={"text": "hi"}, headers=chat.auth(session))
        assert (missing.status_code, missing.json()["error"]) == (404, "not_found"), path
    assert (await chat.client.get("/healthz")).status_code == 200


class _BrokenDomain:
    """A domain whose `customer_says` has a bug (everything else a real session would answer)."""

    def mode(self, session_id: str) -> str:
        if session_id != "s1":
            raise UnknownSession(session_id)
        return "bot"

    def check_token(self, session_id: str, token: str) -> bool:
        return token == "t1"

    async def customer_says(self, session_id: str, text: str) -> int:
        raise ZeroDivisionError("a bug")


@pytest.mark.parametrize("root_path", ["", ROOT])
async def test_a_bug_is_500_internal_and_reaches_the_server(root_path: str) -> None:
    app = build_chat_app(_BrokenDomain(), HTTP)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app, root_path=root_path)
    async with httpx.AsyncClient(transport=transport, base_url="http://chat.test") as client:
        with pytest.raises(ZeroDivisionError):  # re-raised for the server to see
            await client.post(
                f"{root_path}/api/sessions/s1/messages",
                json={"text": "hi"},
                headers={"authorization": "Bearer t1"},
            )
    quiet = httpx.ASGITransport(app=app, root_path=root_path, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=quiet, base_url="http://chat.test") as client:
        answer = await client.post(
            f"{root_path}/api/sessions/s1/messages",
            json={"text": "hi"},
            headers={"authorization": "Bearer t1"},
        )
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal", "detail": "the server failed to answer; retry"}


def _receive(
    *messages: MutableMapping[str, Any],
) -> tuple[Callable[[], Awaitable[MutableMapping[str, Any]]], list[int]]:
    taken: list[int] = []

    async def receive() -> MutableMapping[str, Any]:
        taken.append(len(taken))
        return messages[len(taken) - 1]

    return receive, taken


async def test_read_request_body_within_the_limit() -> None:
    receive, _ = _receive(
        {"type": "http.request", "body": b"abc", "more_body": True},
        {"type": "http.request", "body": b"", "more_body": True},
        {"type": "http.request", "body": b"def"},
    )
    assert await read_request_body(b"6", receive, 6) == b"abcdef"
    receive, _ = _receive({"type": "http.request", "body": b"abc"})
    assert await read_request_body(b"garbage", receive, 6) == b"abc"
    receive, _ = _receive({"type": "http.request"})
    assert await read_request_body(None, receive, 6) == b""


async def test_read_request_body_refuses_a_declared_length_over_the_limit_before_reading() -> None:
    receive, taken = _receive()
    with pytest.raises(TooLarge) as refused:
        await read_request_body(b"7", receive, 6)
    assert refused.value.code == "body_too_large"
    assert taken == []


async def test_read_request_body_stops_as_soon_as_the_stream_passes_the_limit() -> None:
    receive, taken = _receive(
        {"type": "http.request", "body": b"abcd", "more_body": True},
        {"type": "http.request", "body": b"efgh", "more_body": True},
        {"type": "http.request", "body": b"never read"},
    )
    with pytest.raises(TooLarge):
        await read_request_body(None, receive, 6)
    assert len(taken) == 2


async def test_read_request_body_when_the_client_leaves() -> None:
    receive, _ = _receive(
        {"type": "http.request", "body": b"ab", "more_body": True}, {"type": "http.disconnect"}
    )
    with pytest.raises(Malformed) as refused:
        await read_request_body(None, receive, 6)
    assert refused.value.code == "client_disconnected"


async def test_settings_reach_the_front() -> None:
    http = HttpSettings(port=0, max_body_bytes=256, max_text_chars=3, messages_per_minute=1)
    async with serving(http) as chat:
        session = await chat.open()
        assert (await chat.say(session, "abcd")).status_code == 413
        assert (await chat.say(session, "abc")).status_code == 202
        assert (await chat.say(session, "abc")).status_code == 429
