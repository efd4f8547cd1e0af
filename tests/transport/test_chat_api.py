"""The customer HTTP API (design §4.3) over the real domain: routes, auth, errors and limits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio
import trio.testing

from actors.facts import CustomerMessaged
from actors.ports import EndTakeoverRequested, OfferAnswered, OpenRoom, RoomMessagePosted
from actors.settings import HttpSettings
from tests.transport.chat_api_fixtures import HTTP, Chat, serving

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
async def chat() -> AsyncIterator[Chat]:
    async with serving() as c:
        yield c


def session_routes(session_id: str) -> list[tuple[str, str]]:
    base = f"/api/sessions/{session_id}"
    return [
        ("POST", f"{base}/messages"),
        ("GET", f"{base}/events"),
        ("GET", f"{base}/history"),
        ("POST", f"{base}/close"),
    ]


# --- sessions ------------------------------------------------------------------------------


async def test_open_session_makes_a_customer_id_and_an_unguessable_token(chat: Chat) -> None:
    response = await chat.client.post("/api/sessions", json={})
    assert response.status_code == 201
    first = response.json()
    assert set(first) == {"session_id", "customer_id", "token"}
    assert first["customer_id"] and len(first["token"]) >= 32
    second = await chat.open()
    assert second["customer_id"] != first["customer_id"]
    assert second["token"] != first["token"]
    assert second["session_id"] != first["session_id"]


async def test_open_session_keeps_the_given_customer_and_ignores_unknown_fields(
    chat: Chat,
) -> None:
    opened = await chat.open(customer_id="cust-42", name="Ada", email="ada@example.test", x=[1])
    assert opened["customer_id"] == "cust-42"
    no_body = await chat.client.post("/api/sessions")
    assert no_body.status_code == 201  # every field is optional, the body too


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{", "malformed_json"),
        (b"[]", "malformed_json"),
        (b"\xff", "malformed_json"),
        (b'{"customer_id": 7}', "invalid_field"),
        (b'{"customer_id": "no spaces allowed"}', "invalid_field"),
        (b'{"name": {"first": "Ada"}}', "invalid_field"),
        (b'{"email": ["a@b.c"]}', "invalid_field"),
    ],
)
async def test_open_session_refuses_malformed_bodies(chat: Chat, body: bytes, code: str) -> None:
    response = await chat.client.post(
        "/api/sessions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == code
    assert isinstance(response.json()["detail"], str)


# --- messages and events ---------------------------------------------------------------------


async def test_a_message_gets_its_seq_and_the_bot_answers(chat: Chat) -> None:
    session = await chat.open()
    response = await chat.say(session, "Where is my order?")
    assert response.status_code == 202
    assert response.json() == {"seq": 1}
    await chat.settle()
    events = await chat.events(session)
    assert [(e["seq"], e["type"], e["text"]) for e in events] == [
        (1, "customer_message", "Where is my order?"),
        (2, "bot_message", "You said: Where is my order?"),
    ]
    assert all(isinstance(e["at"], float) for e in events)
    assert "agent" not in events[0]
    assert await chat.events(session, after=1) == events[1:]
    assert await chat.events(session, after=2) == []


async def test_202_only_once_the_message_is_durable(chat: Chat) -> None:
    session = await chat.open()
    chat.sink.close_gate()
    answers: list[httpx.Response] = []

    async def post() -> None:
        answers.append(await chat.say(session, "hello"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(post)
        await chat.settle()
        assert chat.sink.held == 1
        assert answers == []  # not durable yet: no answer
        assert chat.sink.of_type(CustomerMessaged) == []
        chat.sink.release()
    assert answers[0].status_code == 202
    [fact] = chat.sink.of_type(CustomerMessaged)
    assert (fact.seq, fact.text) == (answers[0].json()["seq"], "hello")


async def test_a_message_not_durable_within_30_s_is_503_retry(
    chat: Chat, autojump_clock: trio.testing.MockClock
) -> None:
    session = await chat.open()
    chat.sink.close_gate()  # the journal is stuck
    start = trio.current_time()
    response = await chat.say(session, "hello?")
    assert trio.current_time() - start == 30.0
    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    assert response.headers["Retry-After"] == "5"
    chat.sink.release()


async def test_text_comes_back_exactly_as_sent(chat: Chat) -> None:
    session = await chat.open()
    text = f"  {XSS}\n&amp; <b>bold</b> é 🙂 "
    assert (await chat.say(session, text)).status_code == 202
    event, bot = await chat.events(session, after=0)
    assert event["text"] == text
    assert bot["text"] == f"You said: {text}"


async def test_long_poll_waits_exactly_wait_seconds(
    chat: Chat, autojump_clock: trio.testing.MockClock
) -> None:
    session = await chat.open()
    start = trio.current_time()
    assert await chat.events(session, after=0, wait=7) == []
    assert trio.current_time() - start == 7.0


async def test_long_poll_answers_as_soon_as_an_event_arrives(
    chat: Chat, autojump_clock: trio.testing.MockClock
) -> None:
    session = await chat.open()
    got: list[list[dict[str, object]]] = []
    start = trio.current_time()
    async with trio.open_nursery() as nursery:

        async def poll() -> None:
            got.append(await chat.events(session, after=0, wait=25))

        nursery.start_soon(poll)
        await trio.sleep(3)
        assert got == []
        await chat.say(session, "hi")
    assert trio.current_time() - start == 3.0
    assert got[0][0]["type"] == "customer_message"


async def test_wait_is_cut_to_30_seconds(
    chat: Chat, autojump_clock: trio.testing.MockClock
) -> None:
    session = await chat.open()
    start = trio.current_time()
    assert await chat.events(session, wait=3600) == []
    assert trio.current_time() - start == 30.0


async def test_long_poll_returns_at_once_when_the_server_drains(
    chat: Chat, autojump_clock: trio.testing.MockClock
) -> None:
    session = await chat.open()
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(chat.events, session, 0, 25)
        await trio.sleep(2)
        chat.draining.set()
    assert trio.current_time() - start == 2.0
    refused = await chat.say(session, "late")
    assert refused.status_code == 503
    assert refused.json()["error"] == "shutting_down"
    assert refused.headers["Retry-After"] == "5"
    opened = await chat.client.post("/api/sessions", json={})
    assert opened.status_code == 503


@pytest.mark.parametrize(
    "query", ["after=-1", "after=x", "after=1.5", "wait=-2", "wait=nan", "wait=soon"]
)
async def test_bad_after_or_wait_is_400(chat: Chat, query: str) -> None:
    session = await chat.open()
    response = await chat.client.get(
        f"/api/sessions/{session['session_id']}/events?{query}", headers=chat.auth(session)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_field"


# --- auth, unknown and closed sessions -------------------------------------------------------


async def test_missing_or_wrong_token_is_401_on_every_session_route(chat: Chat) -> None:
    session, other = await chat.open(), await chat.open()
    for method, url in session_routes(session["session_id"]):
        for headers, code in [
            ({}, "missing_token"),
            ({"Authorization": f"Basic {session['token']}"}, "missing_token"),
            ({"Authorization": "Bearer "}, "missing_token"),
            ({"Authorization": "Bearer wrong"}, "bad_token"),
            ({"Authorization": f"Bearer {other['token']}"}, "bad_token"),
        ]:
            response = await chat.client.request(method, url, json={"text": "x"}, headers=headers)
            assert response.status_code == 401, (method, url, headers)
            assert response.json()["error"] == code
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert await chat.events(session) == []  # nothing got through


async def test_unknown_session_is_404_with_or_without_a_token(chat: Chat) -> None:
    session = await chat.open()
    for session_id in ("s_0000000000000000", "x" * 500):
        for method, url in session_routes(session_id):
            for headers in ({}, chat.auth(session)):
                response = await chat.client.request(
                    method, url, json={"text": "x"}, headers=headers
                )
                assert response.status_code == 404, (method, url)
                assert response.json()["error"] == "unknown_session"


async def test_closed_session_refuses_messages_with_409_but_stays_readable(chat: Chat) -> None:
    session = await chat.open()
    await chat.say(session, "bye")
    url = f"/api/sessions/{session['session_id']}"
    closed = await chat.client.post(f"{url}/close", headers=chat.auth(session))
    assert closed.status_code == 200
    assert closed.json() == {"session_id": session["session_id"], "closed": True}
    refused = await chat.say(session, "are you there?")
    assert refused.status_code == 409
    assert refused.json()["error"] == "session_closed"
    again = await chat.client.post(f"{url}/close", headers=chat.auth(session))
    assert again.status_code == 200  # closing is idempotent: a retried close is harmless
    events = await chat.events(session)
    assert [e["type"] for e in events][-1] == "closed"


async def test_long_poll_on_a_closed_session_does_not_wait(
    chat: Chat, autojump_clock: trio.testing.MockClock
) -> None:
    session = await chat.open()
    await chat.client.post(
        f"/api/sessions/{session['session_id']}/close", headers=chat.auth(session)
    )
    last = (await chat.events(session))[-1]["seq"]
    start = trio.current_time()
    assert await chat.events(session, after=last, wait=25) == []
    assert trio.current_time() == start


# --- limits ----------------------------------------------------------------------------------


async def test_body_over_the_limit_is_413(chat: Chat) -> None:
    session = await chat.open()
    url = f"/api/sessions/{session['session_id']}/messages"
    big = b'{"text": "' + b"x" * HTTP.max_body_bytes + b'"}'
    declared = await chat.client.post(url, content=big, headers=chat.auth(session))
    assert declared.status_code == 413
    assert declared.json()["error"] == "body_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for i in range(0, len(big), 100):
            yield big[i : i + 100]

    streamed = await chat.client.post(url, content=chunks(), headers=chat.auth(session))
    assert streamed.status_code == 413
    opened = await chat.client.post("/api/sessions", content=b"{" + b" " * 2000 + b"}")
    assert opened.status_code == 413
    assert await chat.events(session) == []


async def test_text_over_the_limit_is_413_and_at_the_limit_is_fine(chat: Chat) -> None:
    session = await chat.open()
    too_long = await chat.say(session, "é" * (HTTP.max_text_chars + 1))
    assert too_long.status_code == 413
    assert too_long.json()["error"] == "text_too_long"
    assert (await chat.say(session, "é" * HTTP.max_text_chars)).status_code == 202


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"not json", "malformed_json"),
        (b'["text"]', "malformed_json"),
        (b"{}", "missing_text"),
        (b'{"message": "hi"}', "missing_text"),
        (b'{"text": 5}', "invalid_field"),
        (b'{"text": null}', "invalid_field"),
        (b'{"text": "  \\n "}', "empty_text"),
        (b'{"text": "\\ud800"}', "invalid_field"),
    ],
)
async def test_malformed_messages_are_400_and_change_nothing(
    chat: Chat, body: bytes, code: str
) -> None:
    session = await chat.open()
    response = await chat.client.post(
        f"/api/sessions/{session['session_id']}/messages",
        content=body,
        headers=chat.auth(session),
    )
    assert response.status_code == 400
    assert response.json()["error"] == code
    assert await chat.events(session) == []


async def test_flooding_is_429_with_retry_after_per_session(
    chat: Chat, autojump_clock: trio.testing.MockClock
) -> None:
    session, other = await chat.open(), await chat.open()
    for i in range(HTTP.messages_per_minute):
        assert (await chat.say(session, f"m{i}")).status_code == 202
    refused = await chat.say(session, "one too many")
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert refused.headers["Retry-After"] == "12"  # 5 a minute: one every 12 s
    assert (await chat.say(other, "I am not flooding")).status_code == 202
    await trio.sleep(11.9)
    assert (await chat.say(session, "still too soon")).status_code == 429
    await trio.sleep(0.1)
    assert (await chat.say(session, "now it is fine")).status_code == 202
    texts = [e["text"] for e in await chat.events(session) if e["type"] == "customer_message"]
    assert texts == [*(f"m{i}" for i in range(5)), "now it is fine"]


async def test_malformed_messages_do_not_spend_the_rate_budget(chat: Chat) -> None:
    session = await chat.open()
    url = f"/api/sessions/{session['session_id']}/messages"
    for _ in range(20):
        bad = await chat.client.post(url, content=b"{", headers=chat.auth(session))
        assert bad.status_code == 400
    for i in range(HTTP.messages_per_minute):
        assert (await chat.say(session, f"m{i}")).status_code == 202


# --- the whole conversation through the API ------------------------------------------------


async def test_searching_agent_joins_talks_and_leaves(chat: Chat) -> None:
    session = await chat.open(customer_id="cust-7", name="Ada")
    assert (await chat.say(session, "I want a human")).status_code == 202
    offer = await chat.slack.next_offer()
    await chat.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, True))
    await chat.slack.next(OpenRoom)
    await chat.settle()
    channel = "C0001"  # the fake Slack numbers the rooms it opens
    await chat.domain.deliver(RoomMessagePosted(channel, offer.agent_id, XSS, "m1"))
    await chat.domain.deliver(EndTakeoverRequested(channel, offer.agent_id))
    await chat.settle()
    events = await chat.events(session)
    assert [e["type"] for e in events] == [
        "customer_message",
        "searching",
        "agent_joined",
        "agent_message",
        "agent_left",
    ]
    joined, said = events[2], events[3]
    assert joined["agent"] == {
        "id": offer.agent_id,
        "display_name": f"agent-{offer.agent_id}",
        "real_name": f"Agent {offer.agent_id}",
        "title": "Support",
        "avatar_url": "",
    }
    assert said["text"] == XSS
    assert said["agent"]["id"] == offer.agent_id
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]


async def test_nobody_available() -> None:
    async with serving(present=()) as chat:
        session = await chat.open()
        await chat.say(session, "human please")
        await chat.settle()
        events = await chat.events(session)
        assert [e["type"] for e in events] == [
            "customer_message",
            "searching",
            "no_agent_available",
        ]
        assert "nobody is available" in events[-1]["text"]


async def test_a_returning_customer_gets_the_earlier_conversation(chat: Chat) -> None:
    first = await chat.open(customer_id="returning-1")
    await chat.say(first, "first visit")
    await chat.client.post(f"/api/sessions/{first['session_id']}/close", headers=chat.auth(first))
    second = await chat.open(customer_id="returning-1")
    assert second["customer_id"] == "returning-1"
    await chat.say(second, "second visit")
    await chat.settle()
    response = await chat.client.get(
        f"/api/sessions/{second['session_id']}/history", headers=chat.auth(second)
    )
    assert response.status_code == 200
    lines = response.json()["lines"]
    assert [(line["speaker"], line["text"]) for line in lines] == [
        ("customer", "first visit"),
        ("bot", "You said: first visit"),
    ]
    assert [e["text"] for e in await chat.events(second)] == [
        "second visit",
        "You said: second visit",
    ]


async def test_greeting_is_an_event_of_the_new_session_not_history() -> None:
    async with serving(greeting="Hello! How can I help?") as chat:
        first = await chat.open(customer_id="greeted")
        second = await chat.open(customer_id="greeted")
        history = await chat.client.get(
            f"/api/sessions/{second['session_id']}/history", headers=chat.auth(second)
        )
        assert [line["text"] for line in history.json()["lines"]] == ["Hello! How can I help?"]
        assert [e["text"] for e in await chat.events(second)] == ["Hello! How can I help?"]
        assert [e["type"] for e in await chat.events(first)] == ["bot_message"]


# --- the other routes ------------------------------------------------------------------------


async def test_stats_shape(chat: Chat) -> None:
    session = await chat.open()
    await chat.say(session, "human")
    await chat.settle()
    response = await chat.client.get("/api/stats")
    assert response.status_code == 200
    stats = response.json()
    agent = stats["agents"][0]
    for key in (
        "id",
        "name",
        "available",
        "load",
        "offered",
        "accepted",
        "ignored",
        "missed",
        "withdrawn",
        "ended",
    ):
        assert key in agent
    assert sorted(a["id"] for a in stats["agents"]) == ["U01", "U02"]
    assert sum(a["offered"] for a in stats["agents"]) == 1
    escalations = stats["escalations"]
    assert {"accepted", "exhausted", "cancelled", "searching"} <= set(escalations)
    assert escalations["searching"] == 1
    assert stats["sessions_open"] == 1


async def test_config_tells_the_widget_the_longest_wait(chat: Chat) -> None:
    config = (await chat.client.get("/api/config")).json()
    assert config["max_wait_s"] == 60.0  # offer timeout 30 s x 2 tries
    assert config["max_text_chars"] == HTTP.max_text_chars
    assert config["messages_per_minute"] == HTTP.messages_per_minute


async def test_healthz_reports_components(chat: Chat) -> None:
    healthy = await chat.client.get("/healthz")
    assert healthy.status_code == 200
    assert healthy.json() == {"status": "ok", "components": {"chat_api": "ok"}}
    chat.components["journal"] = False
    sick = await chat.client.get("/healthz")
    assert sick.status_code == 503
    assert sick.json()["components"] == {"chat_api": "ok", "journal": "down"}
    chat.components["journal"] = True
    chat.draining.set()
    assert (await chat.client.get("/healthz")).status_code == 503


async def test_widget_page_and_assets(chat: Chat) -> None:
    page = await chat.client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/widget.js">' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for name in ("widget.js", "widget-link.js", "widget-view.js"):
        script = await chat.client.get(f"/static/{name}")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
        assert "innerHTML" not in script.text  # texts go in as textContent only
    assert (await chat.client.get("/static/widget.css")).status_code == 200
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_unknown_routes_and_methods_answer_json(chat: Chat) -> None:
    missing = await chat.client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    wrong = await chat.client.get("/api/sessions")
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "method_not_allowed"


async def test_other_limits_come_from_the_settings() -> None:
    http = HttpSettings(port=0, max_body_bytes=256, max_text_chars=3, messages_per_minute=1)
    async with serving(http) as chat:
        session = await chat.open()
        assert (await chat.say(session, "abcd")).status_code == 413
        assert (await chat.say(session, "abc")).status_code == 202
        assert (await chat.say(session, "abc")).status_code == 429
