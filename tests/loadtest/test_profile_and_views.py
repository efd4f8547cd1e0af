"""Profiles and flags (one-line errors, exit code 2), and reading the daemon's Slack messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest import slack_view as view
from loadtest.cli import main, overrides, parser
from loadtest.profile import ProfileError, load_profile, parse_profile


def test_the_shipped_profile_loads_and_flags_override_it() -> None:
    args = parser().parse_args(["--agents", "7", "--think", "0.5", "1", "--no-rate-limits"])
    profile = load_profile(None, overrides(args))
    assert profile.agents.count == 7
    assert (profile.customers.think_s.min, profile.customers.think_s.max) == (0.5, 1.0)
    assert profile.daemon.rate_limits is False
    assert profile.duration_s == 60.0


@pytest.mark.parametrize(
    ("data", "overrides_", "message"),
    [
        ({"agents": {"accept_share": 0.9, "ignore_share": 0.2}}, {}, "agents: accept_share"),
        ({"customers": {"bogus": 1}}, {}, "customers.bogus: unknown key"),
        ({}, {"customers.think_s": {"min": 3, "max": 1}}, "customers.think_s: min"),
        ({}, {"duration_s": "60"}, "duration_s:"),
        ([1, 2], {}, "profile: the top level must be a mapping"),
    ],
)
def test_bad_profiles_are_one_line_naming_the_key(
    data: object, overrides_: dict[str, object], message: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile(data, overrides_)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_bad_profile_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("agents:\n  count: -1\n")
    assert main(["--profile", str(bad)]) == 2
    assert "agents.count" in capsys.readouterr().err
    bad.write_text("agents: [\n")
    assert main(["--profile", str(bad)]) == 2
    assert main(["--profile", str(tmp_path / "missing.yaml")]) == 2


OFFER = {
    "type": "message",
    "channel": "D1",
    "ts": "1.0",
    "text": "New chat from LT12: LTc12m2 I want to talk to a human please",
    "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "New chat: LT12"}},
        {
            "type": "actions",
            "elements": [
                {"type": "button", "action_id": "offer_accept", "value": "o_1"},
                {"type": "button", "action_id": "offer_ignore", "value": "o_1"},
            ],
        },
    ],
}


def test_an_offer_names_its_customer_and_has_no_outcome_yet() -> None:
    assert view.action_ids(OFFER) == {"offer_accept", "offer_ignore"}
    assert view.customer_number(OFFER) == 12
    assert view.offer_outcome(OFFER) is None


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        (":white_check_mark: Accepted — go to <#C1>", "accepted"),
        (":fast_forward: Ignored — offered to someone else.", "ignored"),
        (":hourglass: Missed — the offer expired before an answer.", "missed"),
        (":leftwards_arrow_with_hook: Withdrawn — the chat no longer needs you.", "withdrawn"),
    ],
)
def test_a_resolved_offer_tells_its_outcome(text: str, outcome: str) -> None:
    resolved = {"text": text, "blocks": [{"type": "section", "text": {"text": text}}]}
    assert view.offer_outcome(resolved) == outcome


def test_the_customer_left_note_is_recognised() -> None:
    assert view.says_customer_left({"text": "The customer closed the chat. This room is archived."})
    assert not view.says_customer_left({"text": "LTc1m3 closed?"})
