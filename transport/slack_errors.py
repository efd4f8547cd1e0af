"""The errors Slack I/O can raise: one documented tree, so callers catch exactly what they mean.

Owns every exception raised by the Slack clients of `transport/` (Web API, Socket Mode, RTM).
Foreign errors (httpx, trio, trio-websocket, json) are translated into these at the boundary
with ``raise ... from None``; nothing else escapes a client call.

    SlackError
    ├── SlackApiError              Slack answered ``{"ok": false, "error": ...}``
    │   └── SlackRateLimited       still answered 429 / ``ratelimited`` after the allowed waits
    ├── SlackTransportError        no usable answer: connection, timeout, 5xx, garbage
    │   ├── SlackTimeout           an attempt hit its deadline
    │   ├── SlackHttpError         an HTTP status Slack never uses for answers (e.g. 5xx, 404)
    │   └── SlackPostUncertain     chat.postMessage may have been posted and this could not
    │                              be checked: never post it again blindly
    └── SlackConnectionError       a Socket Mode / RTM connection could not be opened or was lost
        └── SlackFatalDisconnect   reconnecting cannot help (``link_disabled``, revoked token)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "SlackApiError",
    "SlackConnectionError",
    "SlackError",
    "SlackFatalDisconnect",
    "SlackHttpError",
    "SlackPostUncertain",
    "SlackRateLimited",
    "SlackTimeout",
    "SlackTransportError",
]


class SlackError(Exception):
    """Base of every error raised by the Slack clients."""


class SlackApiError(SlackError):
    """Slack answered the call with ``ok: false``; `error_code` is Slack's code (``channel_not_found``)."""

    def __init__(self, method: str, error_code: str, response: Mapping[str, Any]) -> None:
        super().__init__(f"{method}: {error_code}")
        self.method = method
        self.error_code = error_code
        self.response = response


class SlackRateLimited(SlackApiError):
    """The method stayed rate limited through every allowed wait; `retry_after` is Slack's last hint."""

    def __init__(self, method: str, retry_after: float, response: Mapping[str, Any]) -> None:
        super().__init__(method, "ratelimited", response)
        self.retry_after = retry_after


class SlackTransportError(SlackError):
    """No usable answer from Slack after the allowed attempts.

    `maybe_sent` is true when the last attempt may have reached Slack (timeout, 5xx, connection
    lost after the request was written): the call may have taken effect.
    """

    def __init__(self, method: str, detail: str, *, attempts: int = 1, maybe_sent: bool = False):
        super().__init__(f"{method}: {detail} (after {attempts} attempt{'s' * (attempts != 1)})")
        self.method = method
        self.detail = detail
        self.attempts = attempts
        self.maybe_sent = maybe_sent


class SlackTimeout(SlackTransportError):
    """The last attempt did not complete within the attempt deadline."""


class SlackHttpError(SlackTransportError):
    """Slack (or a proxy in front of it) answered an HTTP status that carries no Slack answer."""

    def __init__(self, method: str, status: int, *, attempts: int = 1, maybe_sent: bool = False):
        super().__init__(method, f"HTTP {status}", attempts=attempts, maybe_sent=maybe_sent)
        self.status = status


class SlackPostUncertain(SlackTransportError):
    """A chat.postMessage may be in the channel and looking it up failed.

    Re-posting could duplicate the message. `post_id` is the id carried in the message metadata:
    `SlackWebClient.find_post(channel, post_id, ...)` can look again later.
    """

    def __init__(self, channel: str, post_id: str, detail: str, *, attempts: int = 1):
        super().__init__("chat.postMessage", detail, attempts=attempts, maybe_sent=True)
        self.channel = channel
        self.post_id = post_id


class SlackConnectionError(SlackError):
    """A Socket Mode or RTM connection could not be opened, or was lost."""


class SlackFatalDisconnect(SlackConnectionError):
    """Reconnecting cannot help: Slack disabled the link or refused the token; `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"fatal disconnect: {reason}")
        self.reason = reason
