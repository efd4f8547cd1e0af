"""The lead routes of the customer API over the real domain: leaving a lead when nobody is
available, listing leads, and every refusal."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping

import httpx
import pytest
import trio
import trio.testing

from actors.facts import LeadLeft
from actors.ports import PostLead
from tests.transport.chat_api_fixtures import HTTP, Chat, serving

LEAD = {"email": "ada@example.com", "name": "Ada", "question": "Can I return worn boots?"}
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
async def chat() -> AsyncIterator[Chat]:
    async with serving(present=()) as c:  # no agent is there
        yield c


async def leave(chat: Chat, session: Mapping[str, str], body: object) -> httpx.Response:
    return await chat.client.post(
        f"/api/sessions/{session['session_id']}/lead", json=body, headers=chat.auth(session)
    )


async def nobody_available(chat: Chat) -> dict[str, str]:
    session = await chat.open(name="Ada Lovelace")
    assert (await chat.say(session, "I want a human")).status_code == 202
    events = await chat.events(session, after=2, wait=5)
    assert [e["type"] for e in events] == ["no_agent_available"]
    return session


async def test_a_lead_left_after_nobody_is_available_is_listed_and_sent_to_slack(
    chat: Chat,
) -> None:
    session = await nobody_available(chat)
    response = await leave(chat, session, {**LEAD, "question": XSS, "extra": [1]})
    assert response.status_code == 201, response.text
    lead = response.json()
    assert set(lead) == {"id", "session_id", "customer_id", "name", "email", "question", "at"}
    assert (lead["session_id"], lead["customer_id"]) == (
        session["session_id"],
        session["customer_id"],
    )
    assert (lead["name"], lead["email"], lead["question"]) == ("Ada", LEAD["email"], XSS)

    [told] = await chat.events(session, after=3)
    assert told["type"] == "bot_message"
    assert "ada@example.com" in told["text"] and "as soon as one of us is free" in told["text"]

    listed = await chat.client.get("/api/leads")
    assert listed.status_code == 200
    assert listed.headers["cache-control"] == "no-store"
    assert listed.json() == {"leads": [lead]}

    await chat.settle()
    [post] = chat.slack.of(PostLead)
    assert (post.lead_id, post.question) == (lead["id"], XSS)
    [left] = chat.sink.of_type(LeadLeft)
    assert left.transcript[0].text == "I want a human"


async def test_a_retried_lead_is_the_same_lead(chat: Chat) -> None:
    session = await nobody_available(chat)
    first = await leave(chat, session, LEAD)
    again = await leave(chat, session, LEAD)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert len((await chat.client.get("/api/leads")).json()["leads"]) == 1


async def test_no_leads_yet(chat: Chat) -> None:
    assert (await chat.client.get("/api/leads")).json() == {"leads": []}


def raw(text: str) -> bytes:
    return text.encode()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (raw("{not json"), 400, "malformed_json"),
        (raw("[1, 2]"), 400, "malformed_json"),
        (raw("{}"), 400, "missing_field"),
        (raw('{"email": "ada@example.com"}'), 400, "missing_field"),
        (raw('{"email": "ada@example.com", "question": "  "}'), 400, "missing_field"),
        (raw('{"question": "Where?"}'), 400, "missing_field"),
        (raw('{"email": 3, "question": "Where?"}'), 400, "invalid_field"),
        (raw('{"email": "ada@example.com", "question": ["Where?"]}'), 400, "invalid_field"),
        (raw('{"email": "not an address", "question": "Where?"}'), 400, "invalid_field"),
        (raw('{"email": "ada@example.com", "question": "\\ud800"}'), 400, "invalid_field"),
        (
            json.dumps({"email": "ada@example.com", "question": "q", "name": "n" * 201}).encode(),
            400,
            "invalid_field",
        ),
        (
            json.dumps({"email": "ada@example.com", "question": "q" * 201}).encode(),
            413,
            "text_too_long",
        ),
        (
            json.dumps({"email": "ada@example.com", "question": "q", "pad": "x" * 1100}).encode(),
            413,
            "body_too_large",
        ),
    ],
)
async def test_bad_bodies_are_refused_and_leave_nothing(
    chat: Chat, body: bytes, status: int, code: str
) -> None:
    session = await nobody_available(chat)
    response = await chat.client.post(
        f"/api/sessions/{session['session_id']}/lead", content=body, headers=chat.auth(session)
    )
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    assert response.json()["detail"]
    assert (await chat.client.get("/api/leads")).json() == {"leads": []}
    assert len(await chat.events(session)) == 3  # nothing said to the customer


async def test_tokens_sessions_and_closed_sessions(chat: Chat) -> None:
    session = await nobody_available(chat)
    path = f"/api/sessions/{session['session_id']}/lead"
    missing = await chat.client.post(path, json=LEAD)
    assert (missing.status_code, missing.json()["error"]) == (401, "missing_token")
    wrong = await chat.client.post(path, json=LEAD, headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()["error"]) == (401, "bad_token")
    unknown = await chat.client.post("/api/sessions/s_nope/lead", json=LEAD)
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_session")
    not_allowed = await chat.client.get(path, headers=chat.auth(session))
    assert not_allowed.status_code == 405

    closed = await chat.client.post(
        f"/api/sessions/{session['session_id']}/close", headers=chat.auth(session)
    )
    assert closed.status_code == 200
    late = await leave(chat, session, LEAD)
    assert (late.status_code, late.json()["error"]) == (409, "session_closed")


async def test_leads_share_the_sessions_message_budget(chat: Chat) -> None:
    session = await nobody_available(chat)  # one message of the five a minute spent
    for n in range(HTTP.messages_per_minute - 1):
        assert (await leave(chat, session, {**LEAD, "question": f"q{n}"})).status_code == 201
    flood = await leave(chat, session, {**LEAD, "question": "one more"})
    assert (flood.status_code, flood.json()["error"]) == (429, "rate_limited")
    assert int(flood.headers["retry-after"]) >= 1


async def test_a_session_leaves_five_leads_at_most() -> None:
    http = HTTP.model_copy(update={"messages_per_minute": 100})
    async with serving(http, present=()) as chat:
        session = await nobody_available(chat)
        for n in range(5):
            assert (await leave(chat, session, {**LEAD, "question": f"q{n}"})).status_code == 201
        sixth = await leave(chat, session, {**LEAD, "question": "q5"})
        assert (sixth.status_code, sixth.json()["error"]) == (429, "too_many_leads")
        assert len((await chat.client.get("/api/leads")).json()["leads"]) == 5


async def test_the_list_needs_the_leads_token_when_one_is_set() -> None:
    http = HTTP.model_copy(update={"leads_token": "s3cret-leads"})
    async with serving(http, present=()) as chat:
        session = await nobody_available(chat)
        assert (await leave(chat, session, LEAD)).status_code == 201  # customers need no token
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "s3cret-leads"}):
            refused = await chat.client.get("/api/leads", headers=headers)
            assert (refused.status_code, refused.json()["error"]) == (401, "bad_token")
        ok = await chat.client.get("/api/leads", headers={"Authorization": "Bearer s3cret-leads"})
        assert ok.status_code == 200 and len(ok.json()["leads"]) == 1


async def test_no_leads_while_shutting_down(chat: Chat) -> None:
    session = await nobody_available(chat)
    chat.draining.set()
    response = await leave(chat, session, LEAD)
    assert (response.status_code, response.json()["error"]) == (503, "shutting_down")
    assert response.headers["retry-after"] == "5"


async def test_a_lead_stuck_behind_the_journal_is_503_and_a_retry_finds_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with serving(present=()) as chat, trio.open_nursery() as nursery:
        session = await nobody_available(chat)
        chat.sink.close_gate()  # the journal stops taking customer messages
        nursery.start_soon(chat.say, session, "are you there?")
        await chat.settle()
        assert chat.sink.held == 1

        started = trio.current_time()
        response = await leave(chat, session, LEAD)  # queued behind the stuck message
        assert (response.status_code, response.json()["error"]) == (503, "unavailable")
        assert trio.current_time() - started == 30.0

        chat.sink.release()
        await chat.settle()
        retry = await leave(chat, session, LEAD)
        assert retry.status_code == 201
        leads = (await chat.client.get("/api/leads")).json()["leads"]
        assert [lead["id"] for lead in leads] == [retry.json()["id"]]
