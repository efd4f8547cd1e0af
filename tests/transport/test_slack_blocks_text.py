"""Slack text rules: mrkdwn escaping, entity-safe cutting, plain text of agents' messages, room names."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transport.slack_text import (
    clip,
    escape_mrkdwn,
    mrkdwn_to_plain,
    room_base_name,
    room_name,
    split_escaped,
)

SLACK_NAME = re.compile(r"^[a-z0-9_-]{1,80}$")
text = st.text(alphabet=st.sampled_from("ab &<>|@!#\n:;lt"), max_size=400)


def test_escape_turns_control_characters_into_entities_only() -> None:
    assert escape_mrkdwn("<!channel> <@U1> <http://x|y> a&b *bold*") == (
        "&lt;!channel&gt; &lt;@U1&gt; &lt;http://x|y&gt; a&amp;b *bold*"
    )


@given(text)
def test_escaped_text_has_no_brackets_and_reads_back_unchanged(value: str) -> None:
    escaped = escape_mrkdwn(value)
    assert "<" not in escaped and ">" not in escaped
    assert mrkdwn_to_plain(escaped) == value


@given(text, st.integers(min_value=16, max_value=120))
def test_split_keeps_chunks_within_the_limit_and_never_cuts_an_entity(
    value: str, limit: int
) -> None:
    escaped = escape_mrkdwn(value)
    chunks = split_escaped(escaped, limit)
    assert chunks and all(len(c) <= limit for c in chunks)
    for chunk in chunks:  # every entity is whole: each & starts one
        assert re.fullmatch(r"([^&]|&amp;|&lt;|&gt;)*", chunk), chunk
    # only the whitespace a cut fell on is dropped
    squeeze = re.compile(r"\s+")
    assert squeeze.sub("", "".join(chunks)) == squeeze.sub("", escaped)


def test_split_prefers_a_space_near_the_limit() -> None:
    assert split_escaped("aaaa bbbb cccc dddd eeee", 16) == ["aaaa bbbb cccc", "dddd eeee"]


def test_clip_adds_an_ellipsis_and_respects_entities() -> None:
    assert clip("short", 10) == "short"
    assert clip("abcdefghij", 5) == "abcd…"
    assert clip("ab&amp;cd", 5) == "ab…"


@pytest.mark.parametrize(
    ("slack", "plain"),
    [
        ("hi <@U123> and <@U9|bob>", "hi @U123 and @bob"),
        ("see <#C1|general> or <#C2>", "see #general or #C2"),
        ("<!here> <!channel> <!subteam^S1|@team>", "@here @channel @team"),
        (
            "<https://x.example|docs> <https://y.example>",
            "docs (https://x.example) https://y.example",
        ),
        ("<mailto:a@b.example|a@b.example>", "a@b.example"),
        ("<!date^1700000000^{date}|Nov 14>", "Nov 14"),
        ("1 &lt; 2 &amp;&amp; 3 &gt; 2", "1 < 2 && 3 > 2"),
    ],
)
def test_agent_text_reads_as_plain_text(slack: str, plain: str) -> None:
    assert mrkdwn_to_plain(slack) == plain


@pytest.mark.parametrize(
    ("customer_id", "name"),
    [
        ("C42", "swivl_user_c42"),
        ("Bob.Smith!", "swivl_user_bob-smith"),
        ("José", "swivl_user_jose"),
        ("a__b--c", "swivl_user_a__b-c"),
    ],
)
def test_room_names_follow_slacks_channel_name_rules(customer_id: str, name: str) -> None:
    assert room_base_name("swivl_user_", customer_id) == name


@given(st.text(max_size=200))
def test_any_customer_id_gives_a_valid_distinct_ready_name(customer_id: str) -> None:
    base = room_base_name("r_", customer_id)
    assert SLACK_NAME.match(base) and base.startswith("r_") and base.strip("_-")
    for attempt in (1, 2, 37, 1000):
        assert SLACK_NAME.match(room_name(base, attempt))


def test_returning_customers_get_numbered_names_within_80_characters() -> None:
    assert room_name("swivl_user_c42", 1) == "swivl_user_c42"
    assert room_name("swivl_user_c42", 2) == "swivl_user_c42-2"
    long = room_base_name("swivl_user_", "x" * 64 + "y" * 20)
    assert len(long) == 80
    assert room_name(long, 12) == long[:77] + "-12"
