"""Block Kit views: what the offer DM, its outcomes, the room header and transcript posts carry.

Every view is also checked against the emulator's copy of Slack's block validation, so a view
Slack would refuse (`invalid_blocks`) fails here first.
"""

from __future__ import annotations

from typing import Any

import pytest

from actors.ports import OfferView, TranscriptLine
from emulator.blocks import interactive_elements, validate_blocks
from transport.slack_blocks import (
    MAX_POST_CHARS,
    Post,
    date_token,
    line_posts,
    offer_post,
    offer_resolved_post,
    room_header_post,
    transcript_posts,
)

NASTY = "<!channel> <@U123> <http://evil.example|click me> & more"
ESCAPED = "&lt;!channel&gt; &lt;@U123&gt; &lt;http://evil.example|click me&gt; &amp; more"


def tl(
    speaker: Any, text: str, author: str = "", name: str = "", at: float = 1.7e9
) -> TranscriptLine:
    defaults = {"customer": ("c1", "Carol"), "bot": ("bot", "Bot"), "agent": ("U7", "Ann")}
    a, n = defaults[speaker]
    return TranscriptLine(speaker, author or a, name or n, text, at)


def view(**changes: Any) -> OfferView:
    base: dict[str, Any] = {
        "offer_id": "o_1",
        "escalation_id": "e_1",
        "agent_id": "U7",
        "customer_id": "c1",
        "customer_name": "Carol",
        "last_message": NASTY,
        "excerpt": (tl("customer", "hello"), tl("bot", "hi, how can I help?")),
        "expires_at": 1_700_000_045.0,
    }
    return OfferView(**(base | changes))


def all_text(post: Post) -> str:
    return post.text + repr(post.blocks)


def buttons(post: Post) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for _, e in interactive_elements(list(post.blocks))}


def test_offer_has_accept_and_ignore_carrying_the_offer_id() -> None:
    post = offer_post(view())
    validate_blocks(list(post.blocks))
    found = buttons(post)
    assert set(found) == {"offer_accept", "offer_ignore"}
    assert found["offer_accept"]["value"] == found["offer_ignore"]["value"] == "o_1"
    assert found["offer_accept"]["style"] == "primary"
    assert post.metadata == {"event_type": "takeover_offer", "event_payload": {"offer_id": "o_1"}}


def test_offer_shows_name_last_message_excerpt_and_deadline_token() -> None:
    post = offer_post(view())
    text = all_text(post)
    assert "Carol" in text
    assert ESCAPED in text and "<!channel>" not in text and "<@U123>" not in text
    assert "hi, how can I help?" in text
    assert "<!date^1700000045^{time_secs}|2023-11-14 22:14:05 UTC>" in text
    assert post.text.startswith("New chat from Carol")


def test_offer_stays_valid_with_huge_inputs() -> None:
    huge = "x&<" * 5_000
    post = offer_post(
        view(
            customer_name="N" * 1_000,
            last_message=huge,
            excerpt=tuple(tl("customer", huge) for _ in range(20)),
        )
    )
    validate_blocks(list(post.blocks))
    for block in post.blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3_000
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150


@pytest.mark.parametrize(
    ("outcome", "room", "expected"),
    [
        ("accepted", "<#C9>", "Accepted — go to <#C9>"),
        ("accepted", None, "the customer left before the room opened"),
        ("ignored", None, "Ignored"),
        ("missed", None, "Missed"),
        ("withdrawn", None, "Withdrawn"),
    ],
)
def test_resolved_offer_states_its_outcome_without_buttons(
    outcome: Any, room: str | None, expected: str
) -> None:
    post = offer_resolved_post(view(), outcome, room)
    validate_blocks(list(post.blocks))
    assert expected in post.text
    assert buttons(post) == {}
    assert "Carol" in all_text(post)


def test_resolved_offer_without_its_view_still_states_the_outcome() -> None:
    post = offer_resolved_post(None, "withdrawn")
    validate_blocks(list(post.blocks))
    assert "Withdrawn" in post.text


def test_room_header_has_the_end_button_and_escapes_the_customer() -> None:
    post = room_header_post(
        takeover_id="t_1", customer_id="c1", customer_name="<!here> Eve", agent_id="U7", lines=3
    )
    validate_blocks(list(post.blocks))
    end = buttons(post)["takeover_end"]
    assert end["value"] == "t_1" and end["style"] == "danger" and "confirm" in end
    # mrkdwn is escaped; the header is plain_text, which Slack never parses for mentions
    mrkdwn = post.text + repr([b for b in post.blocks if b["type"] != "header"])
    assert "<@U7>" in mrkdwn and "&lt;!here&gt; Eve" in mrkdwn and "<!here>" not in mrkdwn
    assert post.blocks[0]["text"] == {
        "type": "plain_text",
        "text": "Takeover: <!here> Eve",
        "emoji": False,
    }
    assert "/end-takeover" in mrkdwn and "3 messages" in mrkdwn


def test_transcript_posts_in_order_in_each_speakers_name_with_text_escaped() -> None:
    lines = [
        tl("customer", NASTY),
        tl("customer", "second line"),
        tl("bot", "bot answer"),
        tl("agent", "earlier agent"),
        tl("customer", "again"),
    ]
    posts = transcript_posts(lines, {"U7": "https://img.example/ann.png"})
    assert [(p.username, p.text) for p in posts] == [
        ("Carol (customer)", f"{ESCAPED}\nsecond line"),
        ("Bot (bot)", "bot answer"),
        ("Ann (agent)", "earlier agent"),
        ("Carol (customer)", "again"),
    ]
    assert posts[0].icon_emoji == ":bust_in_silhouette:" and posts[0].icon_url is None
    assert posts[2].icon_url == "https://img.example/ann.png" and posts[2].icon_emoji is None
    params = posts[2].params()
    assert params["username"] == "Ann (agent)" and "icon_emoji" not in params
    assert params["unfurl_links"] is False


def test_a_long_line_is_cut_into_posts_within_the_limit_losing_nothing() -> None:
    words = [f"w{i}&" for i in range(3_000)]
    (line,) = [tl("customer", " ".join(words))]
    posts = line_posts(line)
    assert len(posts) > 1
    assert all(len(p.text) <= MAX_POST_CHARS for p in posts)
    assert " ".join(p.text for p in posts) == " ".join(w.replace("&", "&amp;") for w in words)


def test_a_long_history_folds_older_runs_into_digests() -> None:
    lines = [tl("customer" if i % 2 else "bot", f"m{i}", at=1.7e9 + i) for i in range(100)]
    posts = transcript_posts(lines, max_speaker_posts=10)
    speaker_posts = [p for p in posts if p.username]
    digests = [p for p in posts if not p.username]
    assert [p.text for p in speaker_posts] == [f"m{i}" for i in range(90, 100)]
    digest = "\n".join(p.text for p in digests)
    assert "Earlier conversation (90 messages)" in digest
    assert digest.index("): m0\n") < digest.index("): m1\n") < digest.index("): m89")
    assert "<!date^1700000000^{date_short} {time}|" in digest
    assert posts[: len(digests)] == digests


def test_empty_transcript_posts_nothing() -> None:
    assert transcript_posts([]) == []


def test_date_token_falls_back_to_utc_text() -> None:
    assert date_token(0) == "<!date^0^{time_secs}|1970-01-01 00:00:00 UTC>"


def test_update_params_leave_out_unfurl_options() -> None:
    post = offer_resolved_post(view(), "missed")
    assert "unfurl_links" not in post.params(update=True)
    assert post.params()["blocks"] == list(post.blocks)
