"""The /_emu/ routes and the agent console, the console driven in headless Chromium."""

from __future__ import annotations

import json
import queue

import pytest
import trio
import trio_websocket
from slack_sdk.socket_mode.request import SocketModeRequest

from tests.emulator.conftest import WAIT_S, InProcess, ThreadedEmulator, socket_app

OFFER = [
    {"type": "header", "text": {"type": "plain_text", "text": "Ana wants a person"}},
    {
        "type": "section",
        "text": {
            "type": "mrkdwn",
            "text": "*Last message:* talk to a human\nExpires <!date^1700000000^{time_secs}|at 22:13>",
        },
    },
    {
        "type": "actions",
        "block_id": "offer",
        "elements": [
            {
                "type": "button",
                "action_id": "offer_accept",
                "style": "primary",
                "text": {"type": "plain_text", "text": "Accept"},
                "value": "E1",
            },
            {
                "type": "button",
                "action_id": "offer_ignore",
                "text": {"type": "plain_text", "text": "Ignore"},
                "value": "E1",
            },
        ],
    },
]


async def test_users_can_be_added_with_tokens(running: InProcess) -> None:
    with trio.fail_after(10):
        added = await running.emu(
            "POST", "/_emu/users", json={"name": "dana", "real_name": "Dana K", "title": "Agent"}
        )
        body = added.json()
        assert (
            added.status_code == 200
            and body["token"].startswith("xoxp-")
            and body["presence"] == "active"
        )
        who = await running.api("auth.test", body["token"])
        assert who.json()["user_id"] == body["id"]
        listed = (await running.emu("GET", "/_emu/users")).json()["users"]
        assert [u["name"] for u in listed] == ["alice", "bob", "dana"]
        assert {"id", "name", "token", "presence"} <= set(listed[0])
        again = await running.emu("POST", "/_emu/users", json={"name": "dana"})
        assert (again.status_code, again.json()["error"]) == (409, "name_taken")
        bad = await running.emu("POST", "/_emu/users", json={"name": "Not Valid"})
        assert bad.status_code == 400
        broken = await running.emu("POST", "/_emu/users", content=b"{")
        assert (broken.status_code, broken.json()["error"]) == (400, "invalid_json")


async def test_channels_and_messages_inspection(running: InProcess) -> None:
    with trio.fail_after(10):
        bot = running.emulator.credentials.bot_token
        alice = running.emulator.workspace.humans()[0]
        room = (
            await running.api("conversations.create", bot, name="swivl_user_c2", is_private="true")
        ).json()["channel"]["id"]
        await running.api("conversations.invite", bot, channel=room, users=alice.id)
        header = (
            await running.api(
                "chat.postMessage", bot, channel=room, text="Takeover", username="Takeover"
            )
        ).json()["ts"]
        await running.api("pins.add", bot, channel=room, timestamp=header)
        await running.api("chat.postMessage", alice.token, channel=room, text="hello")
        await running.api("chat.update", bot, channel=room, ts=header, text="Takeover (ended)")
        await running.api("conversations.archive", bot, channel=room)
        dm = (await running.api("conversations.open", bot, users=alice.id)).json()["channel"]["id"]

        channels = {
            c["id"]: c for c in (await running.emu("GET", "/_emu/channels")).json()["channels"]
        }
        assert (
            channels[room]["name"] == "swivl_user_c2"
            and channels[room]["is_archived"]
            and channels[room]["is_private"]
        )
        assert channels[room]["members"] == [running.emulator.credentials.bot_user_id, alice.id]
        assert channels[dm]["is_im"] is True
        messages = (await running.emu("GET", "/_emu/messages", params={"channel": room})).json()[
            "messages"
        ]
        assert [
            (m["text"], m["user"], m.get("pinned", False), m.get("username")) for m in messages
        ] == [
            ("Takeover (ended)", running.emulator.credentials.bot_user_id, True, "Takeover"),
            ("hello", alice.id, False, None),
        ]
        missing = await running.emu("GET", "/_emu/messages", params={"channel": "C404"})
        assert (missing.status_code, missing.json()["error"]) == (404, "channel_not_found")


async def test_clicks_and_commands_are_checked(running: InProcess) -> None:
    with trio.fail_after(10):
        bot = running.emulator.credentials.bot_token
        alice, bob = running.emulator.workspace.humans()
        dm = (await running.api("conversations.open", bot, users=alice.id)).json()["channel"]["id"]
        ts = (
            await running.api(
                "chat.postMessage", bot, channel=dm, text="offer", blocks=json.dumps(OFFER)
            )
        ).json()["ts"]

        async def click(**body: str) -> tuple[int, str]:
            response = await running.emu("POST", "/_emu/click", json=body)
            return response.status_code, response.json().get("error", "")

        assert await click(user=alice.id, channel=dm, ts=ts, action_id="offer_nothing") == (
            404,
            "action_not_found",
        )
        assert await click(user=alice.id, channel=dm, ts="1.000001", action_id="offer_accept") == (
            404,
            "message_not_found",
        )
        assert await click(user=bob.id, channel=dm, ts=ts, action_id="offer_accept") == (
            404,
            "channel_not_found",
        )
        assert await click(user="U404", channel=dm, ts=ts, action_id="offer_accept") == (
            404,
            "user_not_found",
        )
        assert await click(user=alice.id, channel=dm, ts=ts, action_id="offer_accept") == (200, "")
        bad = await running.emu(
            "POST",
            "/_emu/command",
            json={"user": alice.id, "channel": dm, "command": "end-takeover"},
        )
        assert (bad.status_code, bad.json()["error"]) == (400, "invalid_command")
        stats = (await running.emu("GET", "/_emu/stats")).json()["socket_mode"]
        assert (stats["published"], stats["pending"]) == (
            2,
            2,
        )  # the bot's message and the click, awaiting an app


async def test_response_url_updates_the_clicked_message(
    running: InProcess, nursery: trio.Nursery
) -> None:
    with trio.fail_after(10):
        bot = running.emulator.credentials.bot_token
        alice = running.emulator.workspace.humans()[0]
        dm = (await running.api("conversations.open", bot, users=alice.id)).json()["channel"]["id"]
        ts = (
            await running.api(
                "chat.postMessage", bot, channel=dm, text="offer", blocks=json.dumps(OFFER)
            )
        ).json()["ts"]
        await running.emu(
            "POST",
            "/_emu/click",
            json={"user": alice.id, "channel": dm, "ts": ts, "action_id": "offer_accept"},
        )
        socket_url = (
            await running.api("apps.connections.open", running.emulator.credentials.app_token)
        ).json()["url"]
        app = await trio_websocket.connect_websocket_url(nursery, socket_url)
        envelopes = [
            json.loads(await app.get_message()) for _ in range(3)
        ]  # hello, own message, click
        assert [e["type"] for e in envelopes] == ["hello", "events_api", "interactive"]
        url = envelopes[2]["payload"]["response_url"]
        done = await running.http.post(
            url,
            json={
                "replace_original": True,
                "text": "Accepted — go to #swivl_user_c9",
                "blocks": [],
            },
        )
        assert done.json() == {"ok": True}
        messages = (await running.emu("GET", "/_emu/messages", params={"channel": dm})).json()[
            "messages"
        ]
        assert [(m["ts"], m["text"]) for m in messages] == [(ts, "Accepted — go to #swivl_user_c9")]
        token = url.rsplit("/", 1)[1]
        for _ in range(4):
            await running.emu("POST", f"/_emu/respond/{token}", json={"text": "again"})
        spent = await running.emu("POST", f"/_emu/respond/{token}", json={"text": "once too often"})
        assert (spent.status_code, spent.json()["error"]) == (404, "expired_url")


async def test_console_page_is_served(running: InProcess) -> None:
    with trio.fail_after(10):
        page = await running.emu("GET", "/_emu/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "/_emu/console.js" in page.text
        script = await running.emu("GET", "/_emu/console.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert (await running.emu("GET", "/_emu/console.css")).status_code == 200
        home = await running.http.get(running.base_url + "/", follow_redirects=False)
        assert home.headers["location"] == "/_emu/"


def next_of(received: queue.Queue[SocketModeRequest], kind: str) -> SocketModeRequest:
    while True:
        request = received.get(timeout=WAIT_S)
        if request.type == kind:
            return request


@pytest.mark.browser
def test_console_in_chromium_clicks_accept_and_the_app_gets_block_actions(
    emulator_thread: ThreadedEmulator,
) -> None:
    from playwright.sync_api import expect, sync_playwright

    alice = emulator_thread.user("alice")
    bot = emulator_thread.bot
    dm = bot.conversations_open(users=alice["id"])["channel"]["id"]
    room = bot.conversations_create(name="swivl_user_c3", is_private=True)["channel"]["id"]
    bot.conversations_invite(channel=room, users=alice["id"])
    offer = bot.chat_postMessage(channel=dm, text="Ana wants a person", blocks=OFFER)

    with socket_app(emulator_thread) as (_, received), sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu"],
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(WAIT_S * 1000)
            page.goto(f"{emulator_thread.base_url}/_emu/?agent=alice&channel={dm}")
            expect(page.locator("#title")).to_have_text("takeover")
            expect(page.locator("#messages")).to_contain_text("Ana wants a person")
            page.get_by_role("button", name="Accept").click()
            request = next_of(received, "interactive")
            payload = request.payload
            assert payload["type"] == "block_actions" and payload["user"]["id"] == alice["id"]
            assert payload["actions"][0]["action_id"] == "offer_accept"
            assert payload["container"]["message_ts"] == offer["ts"]

            page.get_by_role("button", name="Active").click()
            expect(page.locator("#presence-label")).to_have_text("Away")
            assert bot.users_getPresence(user=alice["id"])["presence"] == "away"

            page.get_by_role("button", name="🔒 swivl_user_c3").click()
            expect(page.locator("#title")).to_have_text("🔒 swivl_user_c3")
            page.locator("#text").fill("Hi Ana, Alice here")
            page.locator("#text").press("Enter")
            event = next_of(received, "events_api").payload["event"]
            assert (event["user"], event["channel"], event["text"]) == (
                alice["id"],
                room,
                "Hi Ana, Alice here",
            )
            page.locator("#text").fill("/end-takeover")
            page.locator("#text").press("Enter")
            command = next_of(received, "slash_commands").payload
            assert (command["command"], command["channel_id"], command["user_id"]) == (
                "/end-takeover",
                room,
                alice["id"],
            )
        finally:
            browser.close()
