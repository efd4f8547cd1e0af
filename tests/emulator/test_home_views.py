"""App Home in the emulator: views.publish through slack_sdk, the published view on /_emu/home,
`app_home_opened` and Home-tab clicks delivered to a Socket Mode app."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError

from tests.emulator.conftest import WAIT_S, ThreadedEmulator, socket_app

HOME = {
    "type": "home",
    "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Your takeover stats"}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "agent_available",
                    "text": {"type": "plain_text", "text": "I'm available"},
                    "value": "available",
                }
            ],
        },
    ],
}


def test_views_publish_stores_the_users_home_view(emulator_thread: ThreadedEmulator) -> None:
    alice = emulator_thread.user("alice")
    assert emulator_thread.emu("GET", f"/_emu/home?user={alice['id']}").json() == {
        "ok": True,
        "user": alice["id"],
        "view": None,
        "published": 0,
    }
    first = emulator_thread.bot.views_publish(user_id=alice["id"], view=HOME)["view"]
    assert first["type"] == "home" and first["id"].startswith("V") and first["hash"]
    second = emulator_thread.bot.views_publish(user_id=alice["id"], view=HOME)["view"]
    assert second["id"] == first["id"]  # the same Home view, republished
    home = emulator_thread.emu("GET", f"/_emu/home?user={alice['id']}").json()
    assert home["published"] == 2
    assert home["view"]["blocks"] == HOME["blocks"] and home["view"]["hash"] == second["hash"]


def test_views_publish_refuses_what_slack_refuses(emulator_thread: ThreadedEmulator) -> None:
    alice = emulator_thread.user("alice")
    bot = emulator_thread.bot
    cases = [
        ({"user_id": "U0NOBODY", "view": HOME}, "user_not_found"),
        ({"user_id": alice["id"], "view": {"type": "modal", "blocks": []}}, "invalid_arguments"),
        (
            {"user_id": alice["id"], "view": {"type": "home", "blocks": [{"type": "x"}]}},
            "invalid_blocks",
        ),
        ({"user_id": alice["id"], "view": HOME, "hash": "stale"}, None),  # no view yet: no conflict
        ({"user_id": alice["id"], "view": HOME, "hash": "stale"}, "hash_conflict"),
    ]
    for args, error in cases:
        if error is None:
            assert bot.views_publish(**args)["ok"]
            continue
        with pytest.raises(SlackApiError) as refused:
            bot.views_publish(**args)
        assert refused.value.response["error"] == error
    with pytest.raises(SlackApiError) as user_token:
        emulator_thread.user_client("bob").views_publish(user_id=alice["id"], view=HOME)
    assert user_token.value.response["error"] == "not_allowed_token_type"


def test_opening_home_and_clicking_in_it_reach_the_app(emulator_thread: ThreadedEmulator) -> None:
    alice = emulator_thread.user("alice")
    with socket_app(emulator_thread) as (_, received):
        assert emulator_thread.emu("POST", "/_emu/home/open", json={"user": alice["id"]}).json()[
            "ok"
        ]
        opened = received.get(timeout=WAIT_S)
        assert opened.type == "events_api"
        event = opened.payload["event"]
        assert event["type"] == "app_home_opened" and event["user"] == alice["id"]
        assert event["tab"] == "home" and event["channel"].startswith("D") and "view" not in event

        no_view = emulator_thread.emu(
            "POST", "/_emu/home/click", json={"user": alice["id"], "action_id": "agent_available"}
        )
        assert no_view.status_code == 404 and no_view.json()["error"] == "view_not_found"

        view = emulator_thread.bot.views_publish(user_id=alice["id"], view=HOME)["view"]
        click = emulator_thread.emu(
            "POST", "/_emu/home/click", json={"user": alice["id"], "action_id": "agent_available"}
        )
        assert click.json()["ok"]
        clicked = received.get(timeout=WAIT_S)
        assert clicked.type == "interactive"
        payload = clicked.payload
        assert payload["type"] == "block_actions" and payload["user"]["id"] == alice["id"]
        assert payload["container"] == {"type": "view", "view_id": view["id"]}
        assert payload["actions"][0]["action_id"] == "agent_available"

        reopened = emulator_thread.emu("POST", "/_emu/home/open", json={"user": alice["id"]})
        assert reopened.json()["ok"]
        assert received.get(timeout=WAIT_S).payload["event"]["view"]["id"] == view["id"]


def test_home_routes_refuse_bad_input(emulator_thread: ThreadedEmulator) -> None:
    bot_id = emulator_thread.emulator.credentials.bot_user_id
    refusals = [
        ("GET", "/_emu/home?user=U0NOBODY", None, 404, "user_not_found"),
        ("GET", "/_emu/home", None, 400, "invalid_arguments"),
        ("GET", f"/_emu/home?user={bot_id}", None, 404, "user_not_found"),
        ("POST", "/_emu/home/open", b"[1]", 400, "invalid_json"),
        ("POST", "/_emu/home/open", b'{"user": 7}', 400, "invalid_arguments"),
        (
            "POST",
            "/_emu/home/click",
            b'{"user": "U0NOBODY", "action_id": "x"}',
            404,
            "user_not_found",
        ),
    ]
    for method, path, body, status, error in refusals:
        answer = emulator_thread.emu(method, path, content=body)
        assert (answer.status_code, answer.json()["error"]) == (status, error), path
