"""Events API mode: signed HTTP deliveries checked with slack_sdk's SignatureVerifier, and Slack's
retries timed under the autojump clock. The app's URLs are set at runtime through POST /_emu/app."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import pytest
import trio
import trio.testing
from hypercorn.config import Config
from hypercorn.trio import serve
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator import Emulator
from tests.emulator.conftest import InProcess

DEADLINE_S = 7200  # virtual seconds: a hung test fails instead of hanging

OFFER = [
    {
        "type": "actions",
        "block_id": "offer",
        "elements": [
            {
                "type": "button",
                "action_id": "offer_accept",
                "text": {"type": "plain_text", "text": "Accept"},
                "value": "E9",
            }
        ],
    }
]


@dataclass(frozen=True)
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """The app's HTTP side: records each request; `answers` gives (status, delay, body) per request."""

    answers: list[tuple[int, float, object]] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self.send, self.inbox = trio.open_memory_channel[Received](100)

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        self.send.send_nowait(
            Received(trio.current_time(), request.url.path, dict(request.headers), body)
        )
        status, delay, answer = self.answers.pop(0) if self.answers else (200, 0.0, None)
        await trio.sleep(delay)
        if answer is None:
            return Response(status_code=status)
        return JSONResponse(answer, status_code=status)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        app = Starlette(routes=[Route("/{kind:str}", self.endpoint, methods=["POST"])])
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.errorlog = None
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(serve, app, config)
            self.url = binds[0]
            task_status.started()


@pytest.fixture
async def receiver(nursery: trio.Nursery, running: InProcess) -> Receiver:
    receiver = Receiver()
    await nursery.start(receiver.run)
    urls = {
        f"{kind}_url": f"{receiver.url}/{kind}" for kind in ("events", "interactivity", "commands")
    }
    app = await running.emu("POST", "/_emu/app", json=urls)
    assert app.json()["events_url"] == urls["events_url"]
    return receiver


def verify(
    emulator: Emulator, request: Received, body: bytes | None = None, timestamp: str | None = None
) -> bool:
    verifier = SignatureVerifier(emulator.credentials.signing_secret)
    return verifier.is_valid(
        (request.body if body is None else body).decode(),
        timestamp or request.headers["x-slack-request-timestamp"],
        request.headers["x-slack-signature"],
    )


def alice(emu: InProcess) -> tuple[str, str]:
    user = next(u for u in emu.emulator.workspace.humans() if u.name == "alice")
    return user.id, user.token


async def dm_with_alice(emu: InProcess) -> str:
    opened = await emu.api(
        "conversations.open", emu.emulator.credentials.bot_token, users=alice(emu)[0]
    )
    return opened.json()["channel"]["id"]


async def test_events_are_signed_as_slack_signs(
    running: InProcess, receiver: Receiver, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(DEADLINE_S):
        dm = await dm_with_alice(running)
        await running.api("chat.postMessage", alice(running)[1], channel=dm, text="hello app")
        request = await receiver.inbox.receive()
        assert request.path == "/events"
        assert request.headers["content-type"] == "application/json"
        assert verify(running.emulator, request)
        assert not verify(running.emulator, request, body=request.body.replace(b"hello", b"hallo"))
        stale = str(int(request.headers["x-slack-request-timestamp"]) - 1)
        assert not verify(running.emulator, request, timestamp=stale)
        wrapper = json.loads(request.body)
        assert (
            wrapper["type"] == "event_callback"
            and wrapper["api_app_id"] == running.emulator.credentials.app_id
        )
        event = wrapper["event"]
        assert (event["type"], event["channel"], event["channel_type"], event["text"]) == (
            "message",
            dm,
            "im",
            "hello app",
        )
        assert "x-slack-retry-num" not in request.headers


async def test_failed_events_are_retried_at_once_then_after_1_and_5_minutes(
    running: InProcess, receiver: Receiver, autojump_clock: trio.testing.MockClock
) -> None:
    receiver.answers = [(500, 0.0, None), (503, 0.0, None), (500, 0.0, None), (500, 0.0, None)]
    with trio.fail_after(DEADLINE_S):
        dm = await dm_with_alice(running)
        await running.api("chat.postMessage", alice(running)[1], channel=dm, text="retry me")
        attempts = [await receiver.inbox.receive() for _ in range(4)]
        start = attempts[0].at
        assert [round(a.at - start, 6) for a in attempts] == [0.0, 0.0, 60.0, 360.0]
        assert [a.headers.get("x-slack-retry-num") for a in attempts] == [None, "1", "2", "3"]
        assert [a.headers.get("x-slack-retry-reason") for a in attempts[1:]] == ["http_error"] * 3
        assert len({json.loads(a.body)["event_id"] for a in attempts}) == 1
        assert all(verify(running.emulator, a) for a in attempts)
        with trio.move_on_after(3600) as quiet:
            await receiver.inbox.receive()
        assert quiet.cancelled_caught  # three retries, then Slack gives up
        stats = (await running.emu("GET", "/_emu/stats")).json()["events_api"]
        assert (stats["failed_attempts"], stats["given_up"]) == (4, 1)


async def test_slow_answers_time_out_after_3_seconds(
    running: InProcess, receiver: Receiver, autojump_clock: trio.testing.MockClock
) -> None:
    receiver.answers = [(200, 10.0, None)]
    with trio.fail_after(DEADLINE_S):
        dm = await dm_with_alice(running)
        await running.api("chat.postMessage", alice(running)[1], channel=dm, text="slow")
        first = await receiver.inbox.receive()
        retry = await receiver.inbox.receive()
        assert retry.at - first.at == pytest.approx(3.0)
        assert (retry.headers["x-slack-retry-num"], retry.headers["x-slack-retry-reason"]) == (
            "1",
            "http_timeout",
        )


async def test_clicks_post_block_actions_as_a_form_and_are_not_retried(
    running: InProcess, receiver: Receiver, autojump_clock: trio.testing.MockClock
) -> None:
    receiver.answers = [(200, 0.0, None), (500, 0.0, None)]
    with trio.fail_after(DEADLINE_S):
        dm = await dm_with_alice(running)
        posted = await running.api(
            "chat.postMessage",
            running.emulator.credentials.bot_token,
            channel=dm,
            text="offer",
            blocks=json.dumps(OFFER),
        )
        ts = posted.json()["ts"]
        own_event = await receiver.inbox.receive()  # the app's own message
        assert json.loads(own_event.body)["event"]["bot_id"] == running.emulator.credentials.bot_id
        click = {"user": alice(running)[0], "channel": dm, "ts": ts, "action_id": "offer_accept"}
        assert (await running.emu("POST", "/_emu/click", json=click)).json()["ok"]
        request = await receiver.inbox.receive()
        assert request.path == "/interactivity" and verify(running.emulator, request)
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        payload = json.loads(parse_qs(request.body.decode())["payload"][0])
        assert payload["type"] == "block_actions" and payload["actions"][0]["value"] == "E9"
        with trio.move_on_after(600) as quiet:
            await receiver.inbox.receive()
        assert quiet.cancelled_caught


async def test_command_answer_becomes_an_ephemeral_reply(
    running: InProcess, receiver: Receiver, autojump_clock: trio.testing.MockClock
) -> None:
    receiver.answers = [(200, 0.0, {"text": "Use this in a takeover room"})]
    with trio.fail_after(DEADLINE_S):
        dm = await dm_with_alice(running)
        user_id = alice(running)[0]
        command = {"user": user_id, "channel": dm, "command": "/end-takeover", "text": ""}
        before = (await running.emu("GET", "/_emu/changes", params={"wait": 0})).json()["version"]
        assert (await running.emu("POST", "/_emu/command", json=command)).json()["ok"]
        request = await receiver.inbox.receive()
        assert request.path == "/commands" and verify(running.emulator, request)
        fields = {
            k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()
        }
        assert (
            fields["command"],
            fields["user_id"],
            fields["channel_id"],
            fields["channel_name"],
        ) == (
            "/end-takeover",
            user_id,
            dm,
            "directmessage",
        )
        await running.emu("GET", "/_emu/changes", params={"since": before, "wait": 30})
        shown = await running.emu("GET", "/_emu/messages", params={"channel": dm, "user": user_id})
        assert [(m["text"], m["ephemeral"]) for m in shown.json()["messages"]] == [
            ("Use this in a takeover room", True)
        ]


async def test_app_urls_are_validated(running: InProcess) -> None:
    with trio.fail_after(10):
        bad = await running.emu("POST", "/_emu/app", json={"events_url": "ftp://x"})
        assert (bad.status_code, bad.json()["error"]) == (400, "invalid_request")
        unknown = await running.emu("POST", "/_emu/app", json={"bot_token": "xoxb-1"})
        assert unknown.status_code == 400
        cleared = await running.emu("POST", "/_emu/app", json={"events_url": None})
        assert cleared.json()["events_url"] is None
