"""What one Web API attempt sends and what its answer means: body encoding and classification.

Owns `Endpoint` (a method's pre-parsed URL), the request body rules (JSON for chat.* and views.*, forms elsewhere), `classify`, which
turns one HTTP answer into Slack's parsed answer, a `Limited` (429 / ``ratelimited``, with its
``Retry-After``) or a retryable `Failure`, raising `SlackApiError` / `SlackHttpError` for
answers no retry can change, and `final_error`, the error raised once the attempts ran out.
Pure functions: the retry loop lives in `transport.slack_web`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from transport.slack_errors import (
    SlackApiError,
    SlackHttpError,
    SlackPostUncertain,
    SlackTimeout,
    SlackTransportError,
)
from transport.slack_web_post import PendingPost, form_encode

__all__ = [
    "FORM_TYPE",
    "JSON_METHODS",
    "JSON_TYPE",
    "Endpoint",
    "Failure",
    "Headers",
    "Limited",
    "classify",
    "encode_body",
    "final_error",
]

JSON_METHODS = frozenset(
    {"chat.postMessage", "chat.update", "chat.postEphemeral", "chat.scheduleMessage"}
    | {"views.publish", "views.open", "views.update", "views.push"}
)
JSON_TYPE = b"application/json; charset=utf-8"
FORM_TYPE = b"application/x-www-form-urlencoded"
Headers = httpx.Headers | list[tuple[bytes, bytes]]


class Endpoint:
    """One method's URL, pre-parsed for both transport paths (httpx objects or raw exchange)."""

    __slots__ = ("host", "origin", "target", "url")

    def __init__(self, url: httpx.URL) -> None:
        self.url = url
        self.origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        self.target = url.raw_path
        self.host = url.netloc


@dataclass(frozen=True, slots=True)
class Failure:
    """A retryable failure; `maybe_sent` when the attempt may have reached Slack."""

    kind: str  # "timeout" | "http" | "transport"
    detail: str
    maybe_sent: bool
    status: int = 0


@dataclass(frozen=True, slots=True)
class Limited:
    retry_after: float
    response: Mapping[str, Any]


def encode_body(method: str, params: dict[str, Any]) -> tuple[bytes, bytes]:
    """The request body and its content type."""
    if method in JSON_METHODS:
        return json.dumps(params, separators=(",", ":")).encode(), JSON_TYPE
    return form_encode(params), FORM_TYPE


def classify(
    method: str, status: int, headers: Headers, content: bytes, default_retry_after: float
) -> dict[str, Any] | Failure | Limited:
    """Slack's answer when ok; a `Limited` or `Failure` to retry; raises what no retry changes."""
    data = _decode(content)
    if status == 200:
        if data is None:
            return Failure("transport", "answer is not a JSON object", True)
        if data.get("ok") is True:
            return data
        error = data.get("error")
        if error == "ratelimited":
            return Limited(retry_after(headers, default_retry_after), data)
        raise SlackApiError(method, error if isinstance(error, str) else "unknown_error", data)
    if status == 429:
        answer = data or {"ok": False, "error": "ratelimited"}
        return Limited(retry_after(headers, default_retry_after), answer)
    if status >= 500:
        return Failure("http", f"HTTP {status}", True, status)
    error = data.get("error") if data is not None else None
    if isinstance(error, str):
        raise SlackApiError(method, error, data or {})
    raise SlackHttpError(method, status)


def retry_after(headers: Headers, default: float) -> float:
    """Seconds from a ``Retry-After`` header (clamped to an hour), else `default`."""
    if isinstance(headers, httpx.Headers):
        raw = headers.get("retry-after", "")
    else:
        raw = next((v.decode("latin-1") for k, v in headers if k == b"retry-after"), "")
    try:
        value = float(raw)
    except ValueError:
        return default
    if value != value:  # NaN
        return default
    return min(3600.0, max(0.0, value))


def final_error(
    method: str, failure: Failure, attempts: int, post: PendingPost | None
) -> SlackTransportError:
    """The error to raise when `failure` was the last allowed attempt."""
    if post is not None and failure.maybe_sent:
        return SlackPostUncertain(post.channel, post.post_id, failure.detail, attempts=attempts)
    if failure.kind == "timeout":
        return SlackTimeout(method, failure.detail, attempts=attempts, maybe_sent=True)
    if failure.kind == "http":
        return SlackHttpError(
            method, failure.status, attempts=attempts, maybe_sent=failure.maybe_sent
        )
    return SlackTransportError(
        method, failure.detail, attempts=attempts, maybe_sent=failure.maybe_sent
    )


def _decode(content: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(content)
    except ValueError:
        return None
    return data if type(data) is dict else None
