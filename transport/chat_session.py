"""Access to one customer session from the HTTP edge: token checks and domain errors.

Owns: `ChatSessions` (bearer-token and session-id checks shared by the HTTP and WebSocket routes,
the translation of the domain's session errors into 404/409, and the draining signal) and
`WidgetConfig` (what the widget is told by `GET /api/config`).
"""

from __future__ import annotations

from collections.abc import Mapping
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

__all__ = ["MAX_SESSION_ID_CHARS", "ChatSessions", "WidgetConfig", "bearer_token", "bearer_value"]

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
    return bearer_value(headers.get("authorization"))


def bearer_value(value: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value; None when missing or not Bearer."""
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class _DomainErrors:
    """`with sessions.domain_errors():` the domain's refusals as API errors (no state: shared)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: Any
    ) -> None:
        if kind is None or not issubclass(kind, _DOMAIN_REFUSALS):
            return
        if isinstance(error, UnknownSession):
            raise NotFound("unknown_session", "no such session") from None
        if isinstance(error, SessionClosed):
            raise SessionClosedError("session_closed", "this session is closed") from None
        if isinstance(error, InvalidInput):
            raise Malformed("invalid_field", str(error) or "the domain refused a value") from None
        raise Unavailable(
            "unavailable", "the service is not running right now; retry", retry_after=5
        ) from None


_DOMAIN_REFUSALS = (UnknownSession, SessionClosed, InvalidInput, DomainStopped)
_DOMAIN_ERRORS = _DomainErrors()


class ChatSessions:
    """The session checks every route shares, and the shutdown signal they all watch."""

    def __init__(self, domain: ChatDomain, draining: trio.Event) -> None:
        self.domain = domain
        self.draining = draining

    def domain_errors(self) -> _DomainErrors:
        """Turn the domain's refusals into 404 (unknown), 409 (closed), 400 (invalid), 503."""
        return _DOMAIN_ERRORS

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
