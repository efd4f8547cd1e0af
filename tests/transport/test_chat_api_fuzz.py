"""Nothing a client sends crashes the customer API: random requests, headers, bodies and sockets.

Hypothesis drives random methods, paths, query strings, headers and bodies (random bytes, random
JSON, near-valid messages) at the app over the real domain. Every answer must be a 2xx or a 4xx/503
in the error shape; afterwards the API still serves a normal conversation. Random WebSocket
queries must be accepted or refused cleanly. CI runs a modest number of examples;
`--run-slow` runs many more.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.transport.chat_api_fixtures import Chat, Closed, Refused, asgi_websocket, serving

VALID = "{valid}"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
bodies = st.one_of(
    st.none(),
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"text": json_values | st.text(max_size=300)},
        optional={"customer_id": json_values | st.text(max_size=70), "name": json_values},
    ).map(lambda v: json.dumps(v).encode()),
    st.integers(1, 3000).map(lambda n: b'{"text": "' + b"x" * n + b'"}'),
)
session_ids = st.one_of(st.just(VALID), st.text(max_size=200), st.sampled_from(["", "..", "%00"]))
paths = st.one_of(
    st.sampled_from(["/", "/healthz", "/api/stats", "/api/config", "/api/sessions", "/static/x"]),
    st.tuples(
        session_ids, st.sampled_from(["messages", "events", "close", "history", "ws", "", "x"])
    ).map(lambda t: f"/api/sessions/{t[0]}/{t[1]}"),
    st.text(max_size=50).map(lambda t: "/" + t),
)
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60).map(
    str.strip
)
queries = st.dictionaries(
    st.sampled_from(["after", "wait", "token", "x"]),
    st.one_of(st.integers(-5, 10**20).map(str), header_text, st.sampled_from(["nan", "inf"])),
    max_size=3,
)
authorizations = st.one_of(
    st.none(),
    st.just(VALID),
    header_text.map(lambda t: f"Bearer {t}"),
    header_text,
)
extra_headers = st.dictionaries(
    st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True).filter(
        lambda name: name.lower() not in {"host", "content-length", "transfer-encoding"}
    ),
    header_text,
    max_size=3,
)
requests = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
        "path": paths,
        "query": queries,
        "authorization": authorizations,
        "headers": extra_headers,
        "body": bodies,
    }
)

# 307: Starlette redirects a path with a trailing slash to the route without it.
ALLOWED = {200, 201, 202, 307, 400, 401, 404, 405, 409, 413, 429, 503}


async def _send(chat: Chat, session: dict[str, str], request: dict[str, Any]) -> None:
    path = request["path"].replace(VALID, session["session_id"])
    url = quote(path, safe="/%") + ("?" + urlencode(request["query"]) if request["query"] else "")
    headers = dict(request["headers"])
    if request["authorization"] == VALID:
        headers["Authorization"] = f"Bearer {session['token']}"
    elif request["authorization"] is not None:
        headers["Authorization"] = request["authorization"]
    response = await chat.client.request(
        request["method"], url, content=request["body"], headers=headers
    )
    assert response.status_code in ALLOWED, (response.status_code, response.text)
    if response.status_code >= 400 and request["method"] != "HEAD":
        error = response.json()
        assert isinstance(error["error"], str) and isinstance(error["detail"], str)


async def _still_serves(chat: Chat) -> None:
    session = await chat.open()
    answer = await chat.say(session, "still there?")
    assert answer.status_code == 202
    await chat.settle()
    assert [e["text"] for e in await chat.events(session)] == [
        "still there?",
        "You said: still there?",
    ]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(requests, min_size=1, max_size=6))
async def test_random_requests_never_crash_the_api(
    batch: list[dict[str, Any]], autojump_clock: trio.testing.MockClock
) -> None:
    async with serving() as chat:
        session = await chat.open()
        for request in batch:
            await _send(chat, session, request)
        await _still_serves(chat)


@pytest.mark.slow
@settings(
    max_examples=2_000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(requests, min_size=1, max_size=10))
async def test_many_random_requests_never_crash_the_api(
    batch: list[dict[str, Any]], autojump_clock: trio.testing.MockClock
) -> None:
    async with serving() as chat:
        session = await chat.open()
        for request in batch:
            await _send(chat, session, request)
        await _still_serves(chat)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(session_id=session_ids, query=queries, extension=st.booleans())
async def test_random_websocket_handshakes_are_accepted_or_refused_cleanly(
    session_id: str,
    query: dict[str, str],
    extension: bool,
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with serving() as chat:
        session = await chat.open()
        query = {k: (session["token"] if v == VALID else v) for k, v in query.items()}
        sid = session["session_id"] if session_id == VALID else quote(session_id, safe="")
        path = f"/api/sessions/{sid}/ws?{urlencode(query)}"
        try:
            async with asgi_websocket(chat.app, path, denial_extension=extension) as ws:
                await chat.say(session, "ping")
                try:
                    event = await ws.receive_event()
                except Closed as closed:  # refused after accept (no denial extension)
                    assert not extension
                    assert closed.code in {4400, 4401, 4404}, closed
                else:
                    assert (event["type"], event["text"]) == ("customer_message", "ping")
        except Refused as refused:
            assert extension
            assert refused.status in {400, 401, 404}
            assert isinstance(refused.body["error"], str)
        await _still_serves(chat)
