"""Socket Mode, proven with slack_sdk's builtin SocketModeClient, and timed under the autojump clock."""

from __future__ import annotations

import queue

import pytest
from slack_sdk import WebClient
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from emulator import EmulatorConfig
from tests.emulator.conftest import AGENTS, WAIT_S, ThreadedEmulator, next_request, socket_app

OFFER = [
    {
        "type": "actions",
        "block_id": "offer",
        "elements": [
            {
                "type": "button",
                "action_id": "offer_accept",
                "text": {"type": "plain_text", "text": "Accept"},
                "value": "E1",
                "style": "primary",
            }
        ],
    }
]


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(agents=AGENTS, ack_timeout_s=1.0)


def test_app_receives_clicks_commands_and_messages(emulator_thread: ThreadedEmulator) -> None:
    creds = emulator_thread.emulator.credentials
    alice = emulator_thread.user("alice")
    bot = emulator_thread.bot
    dm = bot.conversations_open(users=alice["id"])["channel"]["id"]
    with socket_app(emulator_thread) as (_, received):
        offer = bot.chat_postMessage(channel=dm, text="Ana needs help", blocks=OFFER)
        own = next_request(received)  # the app's own message raises an event too, with bot_id
        assert own.type == "events_api"
        assert own.payload["event"]["bot_id"] == creds.bot_id
        assert own.payload["event"]["user"] == creds.bot_user_id

        click = {"user": alice["id"], "channel": dm, "ts": offer["ts"], "action_id": "offer_accept"}
        assert emulator_thread.emu("POST", "/_emu/click", json=click).json()["ok"]
        request = next_request(received)
        assert request.type == "interactive"
        payload = request.payload
        assert payload["type"] == "block_actions" and payload["api_app_id"] == creds.app_id
        assert payload["user"] == {
            "id": alice["id"],
            "username": "alice",
            "name": "alice",
            "team_id": creds.team_id,
        }
        assert payload["team"]["id"] == creds.team_id and payload["channel"]["id"] == dm
        assert payload["container"] == {
            "type": "message",
            "message_ts": offer["ts"],
            "channel_id": dm,
            "is_ephemeral": False,
        }
        assert payload["message"]["ts"] == offer["ts"] and payload["message"]["blocks"] == OFFER
        [action] = payload["actions"]
        assert (action["action_id"], action["block_id"], action["value"], action["type"]) == (
            "offer_accept",
            "offer",
            "E1",
            "button",
        )
        assert (
            action["action_ts"]
            and payload["trigger_id"]
            and payload["response_url"].startswith(emulator_thread.base_url)
        )

        room = bot.conversations_create(name="swivl_user_c7", is_private=True)["channel"]["id"]
        bot.conversations_invite(channel=room, users=alice["id"])
        command = {
            "user": alice["id"],
            "channel": room,
            "command": "/end-takeover",
            "text": "thanks",
        }
        assert emulator_thread.emu("POST", "/_emu/command", json=command).json()["ok"]
        request = next_request(received)
        assert request.type == "slash_commands"
        fields = request.payload
        assert (fields["command"], fields["text"], fields["user_id"], fields["user_name"]) == (
            "/end-takeover",
            "thanks",
            alice["id"],
            "alice",
        )
        assert (fields["channel_id"], fields["channel_name"], fields["team_id"]) == (
            room,
            "swivl_user_c7",
            creds.team_id,
        )
        assert fields["response_url"] and fields["trigger_id"]

        emulator_thread.user_client("alice").chat_postMessage(
            channel=room, text="Hi Ana, I'm Alice"
        )
        request = next_request(received)
        wrapper = request.payload
        assert request.type == "events_api" and wrapper["type"] == "event_callback"
        assert wrapper["event_id"].startswith("Ev") and isinstance(wrapper["event_time"], int)
        event = wrapper["event"]
        assert (
            event["type"],
            event["channel"],
            event["channel_type"],
            event["user"],
            event["text"],
        ) == (
            "message",
            room,
            "group",
            alice["id"],
            "Hi Ana, I'm Alice",
        )
        assert "bot_id" not in event and event["ts"] == event["event_ts"]


def test_slash_command_ack_payload_answers_the_user(emulator_thread: ThreadedEmulator) -> None:
    alice = emulator_thread.user("alice")
    dm = emulator_thread.bot.conversations_open(users=alice["id"])["channel"]["id"]
    answered: queue.Queue[str] = queue.Queue()
    client = SocketModeClient(
        app_token=emulator_thread.emulator.credentials.app_token,
        web_client=WebClient(base_url=emulator_thread.api_url),
    )

    def listener(sm: SocketModeClient, request: SocketModeRequest) -> None:
        sm.send_socket_mode_response(
            SocketModeResponse(envelope_id=request.envelope_id, payload={"text": "Not a room"})
        )
        answered.put(request.envelope_id)

    client.socket_mode_request_listeners.append(listener)
    client.connect()
    try:
        before = emulator_thread.emu("GET", "/_emu/changes", params={"wait": 0}).json()["version"]
        command = {"user": alice["id"], "channel": dm, "command": "/end-takeover"}
        emulator_thread.emu("POST", "/_emu/command", json=command)
        answered.get(timeout=WAIT_S)
        # the ack's payload becomes an ephemeral message to the user who ran the command
        changed = emulator_thread.emu(
            "GET", "/_emu/changes", params={"since": before, "wait": WAIT_S}
        )
        assert changed.json()["version"] > before
        seen = emulator_thread.emu(
            "GET", "/_emu/messages", params={"channel": dm, "user": alice["id"]}
        ).json()
        assert [(m["text"], m.get("ephemeral")) for m in seen["messages"]] == [("Not a room", True)]
    finally:
        client.auto_reconnect_enabled = False
        emulator_thread.emu("POST", "/_emu/faults", json={"drop_sockets": "socket_mode"})
        client.close()


def test_unacked_envelope_is_redelivered(emulator_thread: ThreadedEmulator) -> None:
    alice = emulator_thread.user("alice")
    room = emulator_thread.bot.conversations_create(name="redelivery", is_private=True)["channel"][
        "id"
    ]
    emulator_thread.bot.conversations_invite(channel=room, users=alice["id"])
    with socket_app(emulator_thread, ack=lambda r: r.retry_attempt > 0) as (_, received):
        emulator_thread.user_client("alice").chat_postMessage(channel=room, text="anyone?")
        first = next_request(received)
        again = next_request(received)
        assert again.envelope_id == first.envelope_id
        assert (first.retry_attempt, first.retry_reason) == (0, "")
        assert (again.retry_attempt, again.retry_reason) == (1, "timeout")
        assert again.payload == first.payload


class Inbox:
    """Message events as an app sees them: a repeated text must be a redelivery of the same envelope."""

    def __init__(self, received: queue.Queue[SocketModeRequest]) -> None:
        self.received = received
        self.first: dict[str, SocketModeRequest] = {}

    def next(self) -> SocketModeRequest:
        request = next_request(self.received)
        text = request.payload["event"]["text"]
        if text in self.first:
            assert request.envelope_id == self.first[text].envelope_id and request.retry_attempt > 0
        else:
            self.first[text] = request
        return request

    def wait_for(self, *texts: str) -> None:
        while not set(texts) <= set(self.first):
            self.next()

    def wait_redelivery(self, text: str) -> SocketModeRequest:
        while True:
            request = self.next()
            if request.payload["event"]["text"] == text and request.retry_attempt > 0:
                return request


def test_reconnects_after_disconnect_and_nothing_is_lost(emulator_thread: ThreadedEmulator) -> None:
    alice = emulator_thread.user("alice")
    room = emulator_thread.bot.conversations_create(name="reconnect", is_private=True)["channel"][
        "id"
    ]
    emulator_thread.bot.conversations_invite(channel=room, users=alice["id"])
    poster = emulator_thread.user_client("alice")

    def ack(request: SocketModeRequest) -> bool:
        # the first delivery of "before-drop" is never acked: the socket drops under it
        return not (
            request.payload["event"]["text"] == "before-drop" and request.retry_attempt == 0
        )

    with socket_app(emulator_thread, ack=ack) as (client, received):
        inbox = Inbox(received)
        first_session = client.session_id()
        poster.chat_postMessage(channel=room, text="one")
        inbox.wait_for("one")

        reply = emulator_thread.emu(
            "POST", "/_emu/faults", json={"disconnect": "refresh_requested"}
        )
        assert reply.json()["disconnected"] == 1
        poster.chat_postMessage(channel=room, text="two")
        inbox.wait_for("two")

        poster.chat_postMessage(channel=room, text="before-drop")
        inbox.wait_for("before-drop")
        held = inbox.first["before-drop"]
        assert held.retry_attempt == 0
        assert (
            emulator_thread.emu(
                "POST", "/_emu/faults", json={"drop_sockets": "socket_mode"}
            ).json()["dropped_socket_mode"]
            >= 1
        )
        poster.chat_postMessage(channel=room, text="after-drop")
        redelivered = inbox.wait_redelivery("before-drop")
        inbox.wait_for("after-drop")
        assert redelivered.envelope_id == held.envelope_id
        assert redelivered.retry_attempt >= 1 and redelivered.retry_reason == "timeout"
        assert client.session_id() != first_session
