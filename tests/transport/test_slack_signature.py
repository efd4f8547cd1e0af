"""verify_slack_signature agrees with slack_sdk's SignatureVerifier and refuses what it must."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.signature import Clock, SignatureVerifier

from transport.slack_signature import slack_signature, verify_slack_signature

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_531_420_618.0


class FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def sdk_signature(body: bytes | str, timestamp: str, secret: str = SECRET) -> str:
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None
    return signature


def test_slacks_documented_example() -> None:
    # https://api.slack.com/authentication/verifying-requests-from-slack
    body = (
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
        "channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
        "command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
        "%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015."
        "47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    signature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert verify_slack_signature(SECRET, "1531420618", body, signature, NOW)
    assert slack_signature(SECRET, "1531420618", body.encode()) == signature


@given(
    text=st.text(max_size=2000),
    timestamp=st.integers(0, 2**33),
    secret=st.text(min_size=1).filter(str.strip),
)
def test_signatures_match_slack_sdk(text: str, timestamp: int, secret: str) -> None:
    ts, body = str(timestamp), text.encode("utf-8")  # slack_sdk decodes bodies as UTF-8
    signature = sdk_signature(body, ts, secret)
    assert slack_signature(secret, ts, body) == signature
    assert verify_slack_signature(secret, ts, body, signature, float(timestamp))


def test_raw_bytes_are_signed_as_received() -> None:
    body = b"\x80\xff binary"
    ts = str(int(NOW))
    signature = slack_signature(SECRET, ts, body)
    assert verify_slack_signature(SECRET, ts, body, signature, NOW)
    assert not verify_slack_signature(SECRET, ts, body + b"!", signature, NOW)


@pytest.mark.parametrize("offset", [-300, -1, 0, 1, 300])
def test_the_five_minute_window_accepts(offset: int) -> None:
    ts = str(int(NOW))
    verifier = SignatureVerifier(SECRET, clock=FixedClock(NOW + offset))
    signature = sdk_signature(b"{}", ts)
    assert verifier.is_valid(b"{}", ts, signature)
    assert verify_slack_signature(SECRET, ts, b"{}", signature, NOW + offset)


@pytest.mark.parametrize("offset", [-301, 301, 86_400])
def test_outside_the_window_is_refused_like_slack_sdk(offset: int) -> None:
    ts = str(int(NOW))
    verifier = SignatureVerifier(SECRET, clock=FixedClock(NOW + offset))
    signature = sdk_signature(b"{}", ts)
    assert not verifier.is_valid(b"{}", ts, signature)
    assert not verify_slack_signature(SECRET, ts, b"{}", signature, NOW + offset)


def test_tampering_and_malformed_headers_are_refused_without_raising() -> None:
    ts = str(int(NOW))
    good = sdk_signature(b'{"a":1}', ts)
    assert verify_slack_signature(SECRET, ts, '{"a":1}', good, NOW)  # str bodies work too
    refused = [
        (SECRET, ts, b'{"a":2}', good),  # body changed
        ("other-secret", ts, b'{"a":1}', good),
        (SECRET, str(int(NOW) + 1), b'{"a":1}', good),  # timestamp changed
        (SECRET, ts, b'{"a":1}', good.upper()),
        (SECRET, ts, b'{"a":1}', "v1=" + good[3:]),
        (SECRET, ts, b'{"a":1}', good + "é"),
        (SECRET, ts, b'{"a":1}', ""),
        (SECRET, ts, b'{"a":1}', None),
        (SECRET, None, b'{"a":1}', good),
        (SECRET, "", b'{"a":1}', good),
        (SECRET, "12ab", b'{"a":1}', good),
        (SECRET, "-1", b'{"a":1}', good),
        (SECRET, "\uff11\uff12", b'{"a":1}', good),  # non-ASCII digits
        ("", ts, b'{"a":1}', slack_signature("", ts, b'{"a":1}')),
        (" ", ts, b'{"a":1}', slack_signature(" ", ts, b'{"a":1}')),
    ]
    for secret, timestamp, body, signature in refused:
        assert not verify_slack_signature(secret, timestamp, body, signature, NOW), (
            secret,
            timestamp,
            signature,
        )
