"""The audit's rules on hand-made stores: what counts as lost, duplicated, or not expected."""

from __future__ import annotations

from loadtest.ledger import Conversation, audit, takeover_spans, tokens_in


def _events(*kinds: tuple[int, str, str | None]) -> list[dict[str, object]]:
    return [{"seq": seq, "type": kind, "text": text} for seq, kind, text in kinds]


def _conversation(sent: dict[str, int], agent_sent: tuple[str, ...]) -> Conversation:
    conv = Conversation(1, "lt-1", session_id="s1", token="t", rooms=["C1"])
    conv.sent = {token: (seq, 0.0) for token, seq in sent.items()}
    conv.agent_sent = dict.fromkeys(agent_sent, 0.0)
    return conv


EVENTS = _events(
    (1, "bot_message", "hi"),
    (2, "customer_message", "LTc1m1 where is my parcel"),
    (3, "searching", None),
    (4, "agent_joined", None),
    (5, "customer_message", "LTc1m3 hello"),
    (6, "agent_message", "LTa1m3 hi there"),
    (7, "agent_left", None),
    (8, "customer_message", "LTc1m4 thanks bot"),
)


def test_spans_run_from_joined_to_left_or_closed() -> None:
    assert takeover_spans(EVENTS) == [(4, 7)]
    still_open = _events((1, "agent_joined", None), (2, "customer_message", "x"))
    assert takeover_spans(still_open)[0][0] == 1
    assert takeover_spans(still_open)[0][1] > 10**9


def test_everything_once_is_clean() -> None:
    conv = _conversation({"LTc1m1": 2, "LTc1m3": 5, "LTc1m4": 8}, ("LTa1m3",))
    rooms = {"C1": ["*LT1* took over", "LTc1m1 where is my parcel", "LTc1m3 hello"]}
    result = audit([conv], {"s1": EVENTS}, rooms)
    assert (result.lost, result.duplicated) == (0, 0)
    # only the takeover's message was expected in the room; the bot-mode ones were not
    assert (result.expected_in_rooms, result.found_in_rooms) == (1, 1)
    assert (result.expected_by_customers, result.found_by_customers) == (1, 1)


def test_a_missing_relay_is_lost_and_a_repeat_is_duplicated() -> None:
    conv = _conversation({"LTc1m3": 5}, ("LTa1m3", "LTa1m9"))
    rooms = {"C1": ["LTc1m1 where", "LTc1m1 where (again)"]}
    result = audit([conv], {"s1": EVENTS}, rooms)
    assert result.lost_to_rooms == ("LTc1m3",)
    assert result.duplicated_in_rooms == ("LTc1m1",)
    assert result.lost_to_customers == ("LTa1m9",)
    assert result.to_json()["lost"] == 2 and result.to_json()["duplicated"] == 1


def test_an_agent_message_delivered_twice_is_duplicated() -> None:
    events = [*EVENTS, {"seq": 9, "type": "agent_message", "text": "LTa1m3 hi there"}]
    result = audit([_conversation({}, ("LTa1m3",))], {"s1": events}, {"C1": []})
    assert result.duplicated_to_customers == ("LTa1m3",)
    assert result.lost == 0


def test_tokens_are_whole_words() -> None:
    assert tokens_in("LTc12m3 and LTa4m10, not xLTc1m1 nor LTc1m1x") == ["LTc12m3", "LTa4m10"]
