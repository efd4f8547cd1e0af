"""The Web API as the official slack_sdk.WebClient sees it: responses, errors, Slack's rules."""

from __future__ import annotations

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.emulator.conftest import ThreadedEmulator

OFFER_BLOCKS = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*Ana* needs help"}},
    {
        "type": "actions",
        "block_id": "offer",
        "elements": [
            {
                "type": "button",
                "action_id": "offer_accept",
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


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(SlackApiError) as caught:
        call(*args, **kwargs)
    return caught.value.response["error"]


def test_auth_test_tells_who_the_token_is(emulator_thread: ThreadedEmulator) -> None:
    creds = emulator_thread.emulator.credentials
    bot = emulator_thread.bot.auth_test()
    assert (bot["user_id"], bot["team_id"], bot["bot_id"]) == (
        creds.bot_user_id,
        creds.team_id,
        creds.bot_id,
    )
    alice = emulator_thread.user_client("alice").auth_test()
    assert alice["user"] == "alice" and "bot_id" not in alice.data


def test_tokens_are_checked(emulator_thread: ThreadedEmulator) -> None:
    api = emulator_thread.api_url
    assert error_of(WebClient(base_url=api).auth_test) == "not_authed"
    assert error_of(WebClient(token="xoxb-forged", base_url=api).auth_test) == "invalid_auth"
    app = WebClient(token=emulator_thread.emulator.credentials.app_token, base_url=api)
    assert error_of(app.auth_test) == "not_allowed_token_type"
    assert (
        error_of(
            emulator_thread.bot.apps_connections_open,
            app_token=emulator_thread.emulator.credentials.bot_token,
        )
        == "not_allowed_token_type"
    )


def test_token_may_travel_in_a_form_field_but_not_in_json(
    emulator_thread: ThreadedEmulator,
) -> None:
    url, token = (
        emulator_thread.api_url + "auth.test",
        emulator_thread.emulator.credentials.bot_token,
    )
    assert httpx.post(url, data={"token": token}).json()["ok"] is True
    assert httpx.get(url, params={"token": token}).json()["ok"] is True
    assert httpx.post(url, json={"token": token}).json()["error"] == "not_authed"


def test_malformed_bodies_are_refused_with_slack_codes(emulator_thread: ThreadedEmulator) -> None:
    url = emulator_thread.api_url + "chat.postMessage"
    auth = {"Authorization": f"Bearer {emulator_thread.emulator.credentials.bot_token}"}
    bad_json = httpx.post(
        url, content=b"{nope", headers={**auth, "Content-Type": "application/json"}
    )
    assert (bad_json.status_code, bad_json.json()["error"]) == (200, "invalid_json")
    array = httpx.post(url, content=b"[1]", headers={**auth, "Content-Type": "application/json"})
    assert array.json()["error"] == "json_not_object"
    xml = httpx.post(url, content=b"<x/>", headers={**auth, "Content-Type": "application/xml"})
    assert xml.json()["error"] == "invalid_post_type"
    unknown = httpx.post(emulator_thread.api_url + "chat.explode", headers=auth)
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_method")


def test_post_update_and_history_keep_blocks_metadata_and_edits(
    emulator_thread: ThreadedEmulator,
) -> None:
    bot = emulator_thread.bot
    alice = emulator_thread.user("alice")
    dm = bot.conversations_open(users=alice["id"])["channel"]["id"]
    assert dm.startswith("D")
    metadata = {"event_type": "offer", "event_payload": {"escalation": "E1"}}
    posted = bot.chat_postMessage(
        channel=dm,
        text="offer",
        blocks=OFFER_BLOCKS,
        metadata=metadata,
        username="Takeover",
        icon_url="https://x.test/i.png",
    )
    assert (
        posted["channel"] == dm
        and posted["message"]["bot_id"] == emulator_thread.emulator.credentials.bot_id
    )
    updated = bot.chat_update(channel=dm, ts=posted["ts"], text="Accepted — go to #room", blocks=[])
    assert updated["text"] == "Accepted — go to #room"

    plain = bot.conversations_history(channel=dm)["messages"]
    assert len(plain) == 1 and "metadata" not in plain[0]
    full = bot.conversations_history(channel=dm, include_all_metadata=True)["messages"][0]
    assert full["metadata"] == metadata
    assert full["text"] == "Accepted — go to #room" and "blocks" not in full
    assert full["edited"]["user"] == emulator_thread.emulator.credentials.bot_user_id
    assert (full["username"], full["icons"]["image_48"]) == ("Takeover", "https://x.test/i.png")


def test_history_pages_newest_first_with_a_cursor(emulator_thread: ThreadedEmulator) -> None:
    bot = emulator_thread.bot
    room = bot.conversations_create(name="paging", is_private=True)["channel"]["id"]
    sent = [bot.chat_postMessage(channel=room, text=f"m{i}")["ts"] for i in range(5)]
    first = bot.conversations_history(channel=room, limit=2)
    assert [m["text"] for m in first["messages"]] == ["m4", "m3"] and first["has_more"]
    second = bot.conversations_history(
        channel=room, limit=2, cursor=first["response_metadata"]["next_cursor"]
    )
    assert [m["text"] for m in second["messages"]] == ["m2", "m1"]
    window = bot.conversations_history(channel=room, oldest=sent[1], latest=sent[3])
    assert [m["text"] for m in window["messages"]] == ["m2"]
    assert error_of(bot.conversations_history, channel=room, latest="soon") == "invalid_ts_latest"
    assert error_of(bot.conversations_history, channel=room, cursor="bogus") == "invalid_cursor"


def test_post_message_errors(emulator_thread: ThreadedEmulator) -> None:
    bot = emulator_thread.bot
    room = bot.conversations_create(name="errors", is_private=True)["channel"]["id"]
    assert error_of(bot.chat_postMessage, channel="C404", text="x") == "channel_not_found"
    with pytest.warns(UserWarning, match="text"):
        assert error_of(bot.chat_postMessage, channel=room) == "no_text"
    assert error_of(bot.chat_postMessage, channel=room, text="x" * 40_001) == "msg_too_long"
    bad_blocks = [
        {
            "type": "actions",
            "elements": [
                {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "A"}}
            ]
            * 2,
        }
    ]
    assert (
        error_of(bot.chat_postMessage, channel=room, text="x", blocks=bad_blocks)
        == "invalid_blocks"
    )
    bob = emulator_thread.user_client("bob")
    assert error_of(bob.chat_postMessage, channel=room, text="let me in") == "channel_not_found"
    general = bob.conversations_list()["channels"][0]["id"]
    assert error_of(bot.chat_postMessage, channel=general, text="hi") == "not_in_channel"
    bot.conversations_archive(channel=room)
    assert error_of(bot.chat_postMessage, channel=room, text="late") == "is_archived"


def test_update_errors(emulator_thread: ThreadedEmulator) -> None:
    bot, alice = emulator_thread.bot, emulator_thread.user("alice")
    room = bot.conversations_create(name="edits", is_private=True)["channel"]["id"]
    bot.conversations_invite(channel=room, users=alice["id"])
    theirs = emulator_thread.user_client("alice").chat_postMessage(channel=room, text="mine")["ts"]
    assert error_of(bot.chat_update, channel=room, ts=theirs, text="x") == "cant_update_message"
    assert error_of(bot.chat_update, channel=room, ts="1.000001", text="x") == "message_not_found"
    own = bot.chat_postMessage(channel=room, text="a")["ts"]
    with pytest.warns(UserWarning, match="text"):
        assert error_of(bot.chat_update, channel=room, ts=own) == "no_text"


def test_post_ephemeral(emulator_thread: ThreadedEmulator) -> None:
    bot, alice, bob = (
        emulator_thread.bot,
        emulator_thread.user("alice"),
        emulator_thread.user("bob"),
    )
    dm = bot.conversations_open(users=alice["id"])["channel"]["id"]
    sent = bot.chat_postEphemeral(channel=dm, user=alice["id"], text="That offer has ended")
    assert sent["message_ts"]
    assert (
        error_of(bot.chat_postEphemeral, channel=dm, user=bob["id"], text="x")
        == "user_not_in_channel"
    )
    stored = emulator_thread.emu("GET", "/_emu/messages", params={"channel": dm}).json()["messages"]
    assert stored == []  # ephemeral messages are not part of history
    seen = emulator_thread.emu(
        "GET", "/_emu/messages", params={"channel": dm, "user": alice["id"]}
    ).json()["messages"]
    assert [(m["text"], m["ephemeral"]) for m in seen] == [("That offer has ended", True)]


def test_channel_names_follow_slack_rules(emulator_thread: ThreadedEmulator) -> None:
    bot = emulator_thread.bot
    assert error_of(bot.conversations_create, name="Swivl User") == "invalid_name_specials"
    assert error_of(bot.conversations_create, name="a" * 81) == "invalid_name_maxlength"
    assert error_of(bot.conversations_create, name="") == "invalid_name_required"
    assert error_of(bot.conversations_create, name="--") == "invalid_name_punctuation"
    created = bot.conversations_create(name="swivl_user_" + "x" * 69, is_private=True)["channel"]
    assert created["is_private"] and created["name"] == "swivl_user_" + "x" * 69
    assert error_of(bot.conversations_create, name=created["name"]) == "name_taken"


def test_archived_channels_keep_their_names_and_bots_cannot_unarchive(
    emulator_thread: ThreadedEmulator,
) -> None:
    bot = emulator_thread.bot
    room = bot.conversations_create(name="swivl_user_c1", is_private=True)["channel"]["id"]
    bot.conversations_archive(channel=room)
    assert error_of(bot.conversations_archive, channel=room) == "already_archived"
    assert error_of(bot.conversations_create, name="swivl_user_c1", is_private=True) == "name_taken"
    assert error_of(bot.conversations_unarchive, channel=room) == "user_is_bot"
    info = bot.conversations_info(channel=room)["channel"]
    assert info["is_archived"] and info["name"] == "swivl_user_c1"
    assert bot.conversations_create(name="swivl_user_c1-2", is_private=True)["ok"]
    # a person may unarchive a channel they are in
    alice = emulator_thread.user_client("alice")
    own = alice.conversations_create(name="alices-room", is_private=True)["channel"]["id"]
    assert error_of(alice.conversations_unarchive, channel=own) == "not_archived"
    alice.conversations_archive(channel=own)
    assert alice.conversations_unarchive(channel=own)["ok"]
    assert alice.conversations_info(channel=own)["channel"]["is_archived"] is False


def test_private_channels_are_visible_only_to_members(emulator_thread: ThreadedEmulator) -> None:
    bot, alice = emulator_thread.bot, emulator_thread.user("alice")
    room = bot.conversations_create(name="secret", is_private=True)["channel"]["id"]
    bob = emulator_thread.user_client("bob")
    assert error_of(bob.conversations_info, channel=room) == "channel_not_found"
    assert error_of(bob.conversations_history, channel=room) == "channel_not_found"
    assert error_of(bob.conversations_members, channel=room) == "channel_not_found"
    assert room not in [
        c["id"] for c in bob.conversations_list(types="private_channel")["channels"]
    ]
    bot.conversations_invite(channel=room, users=alice["id"])
    alice_client = emulator_thread.user_client("alice")
    assert (
        alice_client.conversations_info(channel=room, include_num_members=True)["channel"][
            "num_members"
        ]
        == 2
    )
    assert room in [
        c["id"] for c in alice_client.conversations_list(types="private_channel")["channels"]
    ]


def test_invite_and_members(emulator_thread: ThreadedEmulator) -> None:
    bot, alice, bob = (
        emulator_thread.bot,
        emulator_thread.user("alice"),
        emulator_thread.user("bob"),
    )
    room = bot.conversations_create(name="team", is_private=True)["channel"]["id"]
    invited = bot.conversations_invite(channel=room, users=f"{alice['id']},{bob['id']}")
    assert invited["channel"]["id"] == room
    members = bot.conversations_members(channel=room, limit=2)
    assert members["members"] == [emulator_thread.emulator.credentials.bot_user_id, alice["id"]]
    rest = bot.conversations_members(
        channel=room, cursor=members["response_metadata"]["next_cursor"]
    )
    assert rest["members"] == [bob["id"]] and rest["response_metadata"]["next_cursor"] == ""
    assert (
        error_of(bot.conversations_invite, channel=room, users=alice["id"]) == "already_in_channel"
    )
    assert (
        error_of(
            bot.conversations_invite,
            channel=room,
            users=emulator_thread.emulator.credentials.bot_user_id,
        )
        == "cant_invite_self"
    )
    assert error_of(bot.conversations_invite, channel=room, users="U404") == "user_not_found"
    other = emulator_thread.user_client("alice").conversations_create(
        name="alices", is_private=True
    )["channel"]["id"]
    emulator_thread.user_client("alice").conversations_invite(channel=other, users=bob["id"])
    bob_client = emulator_thread.user_client("bob")
    general = next(
        c["id"] for c in bob_client.conversations_list()["channels"] if c["name"] == "general"
    )
    assert (
        error_of(bot.conversations_invite, channel=general, users=alice["id"]) == "not_in_channel"
    )
    bot.conversations_archive(channel=room)
    assert error_of(bot.conversations_invite, channel=room, users=alice["id"]) == "is_archived"
    assert error_of(bot.conversations_members, channel="C404") == "channel_not_found"


def test_conversations_open_reuses_the_dm(emulator_thread: ThreadedEmulator) -> None:
    bot, alice = emulator_thread.bot, emulator_thread.user("alice")
    first = bot.conversations_open(users=alice["id"])
    again = bot.conversations_open(users=alice["id"], return_im=True)
    assert again["channel"]["id"] == first["channel"]["id"] and again["already_open"]
    assert again["channel"]["is_im"] and again["channel"]["user"] == alice["id"]
    assert error_of(bot.conversations_open, users="U404") == "user_not_found"
    assert error_of(bot.api_call, "conversations.open") == "users_list_not_supplied"
    # chat.postMessage to a user id lands in the app's DM with them
    assert (
        bot.chat_postMessage(channel=alice["id"], text="hello")["channel"] == first["channel"]["id"]
    )


def test_pins(emulator_thread: ThreadedEmulator) -> None:
    bot = emulator_thread.bot
    room = bot.conversations_create(name="pinned", is_private=True)["channel"]["id"]
    header = bot.chat_postMessage(channel=room, text="header", blocks=OFFER_BLOCKS)["ts"]
    bot.pins_add(channel=room, timestamp=header)
    assert error_of(bot.pins_add, channel=room, timestamp=header) == "already_pinned"
    assert error_of(bot.pins_add, channel=room, timestamp="1.000001") == "message_not_found"
    assert error_of(bot.pins_add, channel=room) == "no_item_specified"
    assert error_of(bot.pins_add, channel=room, timestamp="yesterday") == "bad_timestamp"
    history = bot.conversations_history(channel=room)
    assert history["messages"][0]["pinned_to"] == [room] and history["pin_count"] == 1
    stored = emulator_thread.emu("GET", "/_emu/messages", params={"channel": room}).json()[
        "messages"
    ]
    assert (
        stored[0]["pinned"] is True
        and stored[0]["blocks"][1]["elements"][0]["action_id"] == "offer_accept"
    )


def test_users_info_list_and_profile(emulator_thread: ThreadedEmulator) -> None:
    bot, alice = emulator_thread.bot, emulator_thread.user("alice")
    user = bot.users_info(user=alice["id"])["user"]
    assert (user["name"], user["real_name"], user["profile"]["title"]) == (
        "alice",
        "Alice Moreau",
        "Support lead",
    )
    assert user["profile"]["image_192"].startswith("https://")
    assert error_of(bot.users_info, user="U404") == "user_not_found"
    profile = bot.users_profile_get(user=alice["id"])["profile"]
    assert (profile["display_name"], profile["real_name"], profile["title"]) == (
        "alice",
        "Alice Moreau",
        "Support lead",
    )
    assert error_of(bot.users_profile_get, user="U404") == "user_not_found"
    first = bot.users_list(limit=2)
    rest = bot.users_list(limit=2, cursor=first["response_metadata"]["next_cursor"])
    names = [m["name"] for m in first["members"] + rest["members"]]
    assert names == ["takeover", "alice", "bob"]
    assert [m["is_bot"] for m in first["members"]] == [True, False]
    assert error_of(bot.users_list, cursor="not-a-cursor") == "invalid_cursor"


def test_presence(emulator_thread: ThreadedEmulator) -> None:
    bot, alice = emulator_thread.bot, emulator_thread.user("alice")
    assert bot.users_getPresence(user=alice["id"])["presence"] == "active"
    alice_client = emulator_thread.user_client("alice")
    alice_client.users_setPresence(presence="away")
    assert bot.users_getPresence(user=alice["id"])["presence"] == "away"
    own = alice_client.users_getPresence(user=alice["id"])
    assert own["presence"] == "away" and own["manual_away"] is True
    alice_client.users_setPresence(presence="auto")
    assert bot.users_getPresence(user=alice["id"])["presence"] == "active"
    assert error_of(alice_client.users_setPresence, presence="busy") == "invalid_presence"
    assert error_of(bot.users_getPresence, user="U404") == "user_not_found"


def test_connection_urls(emulator_thread: ThreadedEmulator) -> None:
    creds = emulator_thread.emulator.credentials
    url = emulator_thread.bot.apps_connections_open(app_token=creds.app_token)["url"]
    assert url.startswith("ws://127.0.0.1:") and "/link/?ticket=" in url
    rtm = emulator_thread.bot.rtm_connect()
    assert rtm["url"].startswith("ws://") and rtm["self"]["id"] == creds.bot_user_id
    app = WebClient(token=creds.app_token, base_url=emulator_thread.api_url)
    assert error_of(app.rtm_connect) == "not_allowed_token_type"
    assert (
        error_of(WebClient(token="xoxp-nobody", base_url=emulator_thread.api_url).rtm_connect)
        == "invalid_auth"
    )


def test_misc_methods(emulator_thread: ThreadedEmulator) -> None:
    bot, alice = emulator_thread.bot, emulator_thread.user("alice")
    room = bot.conversations_create(name="misc", is_private=True)["channel"]["id"]
    assert bot.conversations_rename(channel=room, name="misc-2")["channel"]["name"] == "misc-2"
    assert (
        bot.conversations_setTopic(channel=room, topic="Ana")["channel"]["topic"]["value"] == "Ana"
    )
    ts = bot.chat_postMessage(channel=room, text="gone soon")["ts"]
    bot.chat_delete(channel=room, ts=ts)
    assert bot.conversations_history(channel=room)["messages"] == []
    view = {
        "type": "home",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
    }
    assert bot.views_publish(user_id=alice["id"], view=view)["view"]["type"] == "home"
    general = next(c for c in bot.conversations_list()["channels"] if c["name"] == "general")
    joined = bot.conversations_join(channel=general["id"])
    assert joined["channel"]["is_member"] is True
    assert bot.conversations_join(channel=general["id"])["warning"] == "already_in_channel"
