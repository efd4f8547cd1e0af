"""slack_decode: Slack's payloads (as Slack documents them) -> facts, ignorings and refusals."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.ports import EndTakeoverRequested, OfferAnswered, PresenceChanged, RoomMessagePosted
from transport.slack_decode import (
    DecodeContext,
    Decoded,
    Ignored,
    InboundRequest,
    Notice,
    Rejected,
    decode,
)

CTX = DecodeContext(bot_user_id="UBOT", bot_id="BBOT")


def block_actions(action_id: str, value: str | None = "o_1", **extra: Any) -> dict[str, Any]:
    action: dict[str, Any] = {"action_id": action_id, "block_id": "b", "type": "button"}
    if value is not None:
        action["value"] = value
    return {
        "type": "block_actions",
        "user": {"id": "U1", "username": "alice", "team_id": "T1"},
        "container": {"type": "message", "message_ts": "1.2", "channel_id": "G1"},
        "channel": {"id": "G1", "name": "swivl_user_c1"},
        "actions": [action],
        **extra,
    }


def message(**fields: Any) -> dict[str, Any]:
    event = {
        "type": "message",
        "channel": "G1",
        "user": "U1",
        "text": "hello &lt;there&gt; <@U2>",
        "ts": "1700000000.000100",
        "channel_type": "group",
    }
    return {k: v for k, v in (event | fields).items() if v is not None}


def callback(event: dict[str, Any], event_id: str = "Ev1") -> InboundRequest:
    return InboundRequest(
        "events_api", {"type": "event_callback", "event_id": event_id, "event": event}
    )


def facts(result: Any) -> tuple[Any, ...]:
    assert isinstance(result, Decoded), result
    return result.facts


@pytest.mark.parametrize(
    ("action_id", "accepted"), [("offer_accept", True), ("offer_ignore", False)]
)
def test_offer_buttons_answer_the_offer_named_by_their_value(
    action_id: str, accepted: bool
) -> None:
    result = decode(InboundRequest("interactive", block_actions(action_id)), CTX)
    assert facts(result) == (OfferAnswered("o_1", "U1", accepted),)


def test_end_button_asks_to_end_the_takeover_of_its_channel() -> None:
    result = decode(InboundRequest("interactive", block_actions("takeover_end", "t_1")), CTX)
    assert facts(result) == (EndTakeoverRequested("G1", "U1"),)


def test_end_command_in_a_channel_asks_to_end_its_takeover() -> None:
    payload = {"command": "/end-takeover", "text": "", "user_id": "U1", "channel_id": "G1"}
    result = decode(InboundRequest("slash_commands", payload, "http"), CTX)
    assert facts(result) == (EndTakeoverRequested("G1", "U1"),)


def test_other_commands_are_ignored_with_a_notice() -> None:
    payload = {"command": "/takeover-stats", "user_id": "U1", "channel_id": "G1"}
    result = decode(InboundRequest("slash_commands", payload), CTX)
    assert result == Ignored(
        "unknown_command", Notice("G1", "U1", "`/takeover-stats` is not a command of this app.")
    )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (block_actions("offer_accept", None), "offer_action_without_value"),
        (block_actions("offer_accept", "") | {"user": {}}, "interaction_without_user"),
        (block_actions("offer_accept") | {"actions": []}, "interaction_without_actions"),
        (block_actions("offer_accept") | {"actions": ["x"]}, "action_not_an_object"),
        ({"type": 5}, "interaction_without_type"),
    ],
)
def test_broken_interactions_are_rejected(payload: dict[str, Any], reason: str) -> None:
    result = decode(InboundRequest("interactive", payload), CTX)
    assert isinstance(result, Rejected) and result.reason == reason


def test_unknown_actions_and_other_interactions_are_ignored() -> None:
    unknown = decode(InboundRequest("interactive", block_actions("something_else")), CTX)
    submission = decode(InboundRequest("interactive", {"type": "view_submission"}), CTX)
    assert unknown == Ignored("unknown_action")
    assert submission == Ignored("interactive_view_submission")


def test_a_persons_room_message_becomes_plain_text_with_a_stable_id() -> None:
    result = decode(callback(message()), CTX)
    assert facts(result) == (
        RoomMessagePosted("G1", "U1", "hello <there> @U2", "G1:1700000000.000100"),
    )
    assert result.event_id == "Ev1"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"bot_id": "BBOT", "user": "UBOT"}, "own_message"),
        ({"user": "UBOT"}, "own_message"),
        ({"bot_id": "BOTHER", "user": "UOTHER"}, "bot_message"),
        ({"subtype": "bot_message", "user": None, "bot_id": "BOTHER"}, "subtype_bot_message"),
        ({"subtype": "channel_join"}, "subtype_channel_join"),
        ({"subtype": "message_changed"}, "subtype_message_changed"),
        ({"subtype": "message_deleted"}, "subtype_message_deleted"),
        ({"channel": "D1", "channel_type": "im"}, "direct_message"),
        ({"text": "   "}, "empty_message"),
        ({"hidden": True}, "hidden"),
    ],
)
def test_messages_not_from_people_in_rooms_are_ignored(fields: dict[str, Any], reason: str) -> None:
    result = decode(callback(message(**fields)), CTX)
    assert isinstance(result, Ignored) and result.reason == reason


def test_thread_broadcasts_and_file_shares_are_relayed() -> None:
    broadcast = decode(callback(message(subtype="thread_broadcast", thread_ts="1.0")), CTX)
    shared = decode(
        callback(message(subtype="file_share", text="see this", files=[{"name": "a.png"}, 5])),
        CTX,
    )
    assert facts(broadcast)[0].text == "hello <there> @U2"
    assert facts(shared)[0].text == "see this\n[shared a file: a.png]"


def test_rtm_messages_decode_like_events() -> None:
    event = message(channel_type=None)
    assert facts(decode(InboundRequest("rtm", event, "rtm"), CTX))[0].room_id == "G1"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"type": "presence_change", "user": "U1", "presence": "active"}, [("U1", True)]),
        (
            {"type": "presence_change", "users": ["U1", "U2", 3], "presence": "away"},
            [("U1", False), ("U2", False)],
        ),
    ],
)
def test_rtm_presence_changes_single_and_batched(
    event: dict[str, Any], expected: list[Any]
) -> None:
    result = decode(InboundRequest("rtm", event, "rtm"), CTX)
    assert facts(result) == tuple(PresenceChanged(u, a) for u, a in expected)


def test_broken_presence_is_rejected() -> None:
    bad = decode(InboundRequest("rtm", {"type": "presence_change", "presence": "busy"}), CTX)
    nobody = decode(InboundRequest("rtm", {"type": "presence_change", "presence": "away"}), CTX)
    assert isinstance(bad, Rejected) and isinstance(nobody, Rejected)


def test_events_api_wrappers() -> None:
    verify = decode(InboundRequest("events_api", {"type": "url_verification"}), CTX)
    other = decode(InboundRequest("events_api", {"type": "nonsense"}), CTX)
    empty = decode(InboundRequest("events_api", {"type": "event_callback"}), CTX)
    home = decode(callback({"type": "app_home_opened", "user": "U1"}), CTX)
    assert verify == Ignored("url_verification")
    assert isinstance(other, Rejected) and isinstance(empty, Rejected)
    assert home == Ignored("event_app_home_opened", event_id="Ev1")


# --- garbage never crashes the decoder --------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
KEYS = [
    "type", "event", "event_id", "user", "users", "channel", "channel_id", "user_id", "command",
    "ts", "text", "subtype", "bot_id", "actions", "container", "value", "action_id", "presence",
    "channel_type", "files", "hidden", "id",
]  # fmt: skip
slackish = st.recursive(
    st.sampled_from(["block_actions", "event_callback", "message", "presence_change", "active",
                     "offer_accept", "takeover_end", "/end-takeover", "G1", "U1", "UBOT", "BBOT"])
    | json_values,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=8),
    max_leaves=40,
)  # fmt: skip
kinds = st.sampled_from(["events_api", "interactive", "slash_commands", "rtm", "bogus"])


@settings(max_examples=400, deadline=None)
@given(kinds, slackish | json_values)
def test_any_payload_decodes_to_a_result_and_never_raises(kind: Any, payload: Any) -> None:
    result = decode(InboundRequest(kind, payload), CTX)
    assert isinstance(result, Decoded | Ignored | Rejected)
    assert not (isinstance(result, Rejected) and result.reason == "decoder_error"), result
    if isinstance(result, Decoded):
        for fact in result.facts:
            assert all(isinstance(getattr(fact, f), str | bool) for f in fact.__slots__)


valid = st.sampled_from(
    [
        ("interactive", block_actions("offer_accept")),
        ("interactive", block_actions("takeover_end")),
        ("events_api", callback(message()).payload),
        ("slash_commands", {"command": "/end-takeover", "user_id": "U1", "channel_id": "G1"}),
        ("rtm", {"type": "presence_change", "users": ["U1"], "presence": "active"}),
    ]
)


def _mutate(value: Any, path: list[int], replacement: Any) -> Any:
    if not path or not isinstance(value, dict | list) or not value:
        return replacement
    keys = list(value) if isinstance(value, dict) else list(range(len(value)))
    key = keys[path[0] % len(keys)]
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[key] = _mutate(value[key], path[1:], replacement)
    return copy


@settings(max_examples=400, deadline=None)
@given(valid, st.lists(st.integers(min_value=0, max_value=50), max_size=5), json_values)
def test_valid_payloads_with_any_part_replaced_never_raise(
    base: tuple[Any, dict[str, Any]], path: list[int], replacement: Any
) -> None:
    kind, payload = base
    mutated = _mutate(payload, path, replacement)
    result = decode(InboundRequest(kind, mutated), CTX)
    assert isinstance(result, Decoded | Ignored | Rejected)
    assert not (isinstance(result, Rejected) and result.reason == "decoder_error"), result
    if isinstance(result, Decoded):
        for fact in result.facts:
            assert all(isinstance(getattr(fact, f), str | bool) for f in fact.__slots__)


def test_unhashable_values_where_strings_belong_are_handled() -> None:
    for fields in ({"subtype": ["x"]}, {"channel_type": {"a": 1}}):
        result = decode(callback(message(**fields)), CTX)
        assert isinstance(result, Ignored | Rejected)
        assert not (isinstance(result, Rejected) and result.reason == "decoder_error")
