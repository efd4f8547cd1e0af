"""Slack's request signatures (v0, HMAC-SHA256), for the Events API HTTP endpoint.

Owns `verify_slack_signature` and `slack_signature`. Slack signs each request it sends with the
app's signing secret: ``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<body>">``
with ``X-Slack-Request-Timestamp: <epoch seconds>``. A request is authentic when the signature
matches (compared in constant time) and its timestamp is within five minutes of `now`, which
stops replays. Pure functions: the caller passes the clock reading.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["MAX_AGE_S", "slack_signature", "verify_slack_signature"]

MAX_AGE_S = 300.0
"""Slack's replay window: requests older (or newer) than five minutes are refused."""


def slack_signature(signing_secret: str, timestamp: str, body: bytes | str) -> str:
    """The ``v0=...`` signature Slack sends for this timestamp and raw body."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    base = b"v0:" + timestamp.encode("utf-8") + b":" + raw
    digest = hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return "v0=" + digest


def verify_slack_signature(
    signing_secret: str,
    timestamp: str | None,
    body: bytes | str,
    signature: str | None,
    now: float,
    *,
    max_age_s: float = MAX_AGE_S,
) -> bool:
    """True when `signature` is Slack's for `body` and `timestamp` is within `max_age_s` of `now`.

    Never raises on bad input: a missing, malformed or non-ASCII header is simply not valid.
    An empty (or blank) signing secret validates nothing.
    """
    if not signing_secret.strip() or not timestamp or not signature:
        return False
    if not timestamp.isascii() or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > max_age_s:
        return False
    if not signature.isascii():
        return False
    expected = slack_signature(signing_secret, timestamp, body)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii"))
