"""Settings: the shipped file loads; bad files exit 2 with one line naming the key (via run.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from actors.settings import SettingsError, load_settings, parse_settings

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_settings_load_with_the_issue_defaults() -> None:
    settings = load_settings(ROOT / "settings.yaml")
    assert settings.slack.mode == "emulator"
    assert settings.routing.offer_timeout_s == 45
    assert settings.routing.max_tries == 3
    assert settings.routing.max_chats_per_agent == 3
    assert settings.slack.room_prefix == "swivl_user_"
    assert [a.name for a in settings.emulator.agents] == ["alice", "bob", "chloe"]


def test_settings_are_frozen() -> None:
    settings = parse_settings({})
    with pytest.raises(ValueError, match="frozen"):
        settings.routing.max_tries = 9  # type: ignore[misc]


def test_environment_references_are_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAKEOVER_TEST_TOKEN", "xoxb-from-env")
    settings = parse_settings(
        {
            "slack": {"mode": "rtm", "bot_token": "${TAKEOVER_TEST_TOKEN}", "app_token": "xapp-1"},
            "routing": {"agents": ["U0AGENT1"]},
        }
    )
    assert settings.slack.bot_token == "xoxb-from-env"


def test_missing_environment_variable_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TAKEOVER_TEST_UNSET", raising=False)
    with pytest.raises(
        SettingsError, match=r"^slack\.bot_token: environment variable TAKEOVER_TEST_UNSET"
    ):
        parse_settings({"slack": {"bot_token": "${TAKEOVER_TEST_UNSET}"}})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"routing": {"offer_timeout_s": 0}},
            "routing.offer_timeout_s: Input should be greater than 0",
        ),
        ({"routing": {"max_tries": True}}, "routing.max_tries: Input should be a valid integer"),
        ({"routing": {"max_tries": "3"}}, "routing.max_tries: Input should be a valid integer"),
        ({"routing": {"agents": ["not-an-id"]}}, "routing.agents.0: String should match pattern"),
        (
            {"slack": {"mode": "socket", "bot_token": "xoxb-1"}},
            "slack.app_token: required when slack.mode is 'socket'",
        ),
        (
            {"slack": {"mode": "carrier-pigeon"}},
            "slack.mode: Input should be 'emulator', 'socket', 'rtm' or 'events'",
        ),
        (
            {"business_hours": {"timezone": "Mars/Olympus"}},
            "business_hours.timezone: unknown timezone 'Mars/Olympus'",
        ),
        (
            {"business_hours": {"weekly": {"mon": ["17:00-09:00"]}}},
            "business_hours.weekly: mon: '17:00-09:00'",
        ),
        (
            {"emulator": {"agents": [{"real_name": "No Name"}]}},
            "emulator.agents.0.name: required key is missing",
        ),
        (
            {"journal": {"fsync": "sometimes"}},
            "journal.fsync: Input should be 'always', 'batch' or 'off'",
        ),
        ({"surprise": {}}, "surprise: unknown key"),
        (
            {"slack": {"mode": "rtm", "bot_token": "xoxb-1", "app_token": "xapp-1"}},
            "routing.agents: required when slack.mode is 'rtm'",
        ),
        (
            {"slack": {"mode": "rtm", "bot_token": "xoxb-1"}},
            "slack.app_token: rtm mode needs an app token",
        ),
    ],
)
def test_bad_values_name_the_key(body: dict[str, object], expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings(body)
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)


BAD_FILES = {
    "unknown key": (
        "routing:\n  offer_timeout_seconds: 30\n",
        "routing.offer_timeout_seconds: unknown key",
    ),
    "negative timeout": (
        "routing:\n  offer_timeout_s: -5\n",
        "routing.offer_timeout_s: Input should be greater than 0",
    ),
    "wrong type": (
        "routing:\n  max_chats_per_agent: lots\n",
        "routing.max_chats_per_agent: Input should be a valid integer",
    ),
    "invalid yaml": ("routing:\n  offer_timeout_s: [30\n", "settings: invalid YAML at line 3"),
    "not a mapping": ("- just\n- a list\n", "settings: the top level must be a mapping"),
    "missing token": (
        "slack:\n  mode: events\n  bot_token: xoxb-1\n",
        "slack.signing_secret: required",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_run_py_exits_2_with_one_line_naming_the_key(case: str, tmp_path: Path) -> None:
    text, expected = BAD_FILES[case]
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    for command in ([], ["emulator"]):
        done = subprocess.run(
            [sys.executable, str(ROOT / "run.py"), *command, "--settings", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert expected in lines[0]
        assert done.stdout == ""
