"""Access to one customer session from the HTTP edge: token checks and domain errors.

Owns: `ChatSessions` (bearer-token and session-id checks shared by the HTTP and WebSocket routes,
the translation of the domain's session errors into 404/409, and the draining signal) and
`WidgetConfig` (what the widget is told by `GET /api/config`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from actors.errors import DomainStopped, InvalidInput, SessionClosed, UnknownSession
from actors.settings import HttpSettings
from transport.chat_errors import (
    Malformed,
    NotFound,
    SessionClosedError,
    Unauthorized,
    Unavailable,
)
from transport.chat_port import ChatDomain
from transport.chat_wire import MAX_WAIT_S

__all__ = ["MAX_SESSION_ID_CHARS", "ChatSessions", "WidgetConfig", "bearer_token"]

MAX_SESSION_ID_CHARS = 128


@dataclass(frozen=True, slots=True)
class WidgetConfig:
    """The numbers the widget shows: a search lasts at most offer timeout x tries."""

    offer_timeout_s: float = 45.0
    max_tries: int = 3
    title: str = "Support"

    def as_json(self, http: HttpSettings) -> dict[str, Any]:
        return {
            "title": self.title,
            "offer_timeout_s": self.offer_timeout_s,
            "max_tries": self.max_tries,
            "max_wait_s": self.offer_timeout_s * self.max_tries,
            "max_text_chars": http.max_text_chars,
            "max_body_bytes": http.max_body_bytes,
            "messages_per_minute": http.messages_per_minute,
            "long_poll_max_wait_s": MAX_WAIT_S,
        }


def bearer_token(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class ChatSessions:
    """The session checks every route shares, and the shutdown signal they all watch."""

    def __init__(self, domain: ChatDomain, draining: trio.Event) -> None:
        self.domain = domain
        self.draining = draining

    @contextlib.contextmanager
    def domain_errors(self) -> Iterator[None]:
        """Turn the domain's refusals into 404 (unknown), 409 (closed), 400 (invalid), 503."""
        try:
            yield
        except UnknownSession:
            raise NotFound("unknown_session", "no such session") from None
        except SessionClosed:
            raise SessionClosedError("session_closed", "this session is closed") from None
        except InvalidInput as e:
            raise Malformed("invalid_field", str(e) or "the domain refused a value") from None
        except DomainStopped:
            raise Unavailable(
                "unavailable", "the service is not running right now; retry", retry_after=5
            ) from None

    def authorize(self, session_id: str, headers: Mapping[str, str]) -> str:
        """The session id once the request's bearer token is right for it; else 401 or 404."""
        return self.authorize_token(session_id, bearer_token(headers))

    def authorize_token(self, session_id: str, token: str | None) -> str:
        """404 for an unknown session (whatever the token), then 401 for a missing or bad token."""
        if not session_id or len(session_id) > MAX_SESSION_ID_CHARS:
            raise NotFound("unknown_session", "no such session")
        with self.domain_errors():
            self.domain.mode(session_id)
        if token is None:
            raise Unauthorized("missing_token", "send the session token as 'Authorization: Bearer'")
        if not self.domain.check_token(session_id, token):
            raise Unauthorized("bad_token", "the token does not match this session")
        return session_id

    def is_closed(self, session_id: str) -> bool:
        with self.domain_errors():
            return self.domain.mode(session_id) == "closed"

    def refuse_if_draining(self) -> None:
        if self.draining.is_set():
            raise Unavailable("shutting_down", "the server is restarting; retry", retry_after=5)
