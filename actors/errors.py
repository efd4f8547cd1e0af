"""The domain's errors, as seen by the customer-facing facade (`actors.domain.Domain`).

    DomainError
    ├── UnknownSession   no session with that id (the API answers 404)
    ├── SessionClosed    the session was closed (409)
    ├── InvalidInput     a value the domain refuses: empty text, a malformed customer id (400)
    └── DomainStopped    the domain is not running (not started yet, or shutting down) (503)

Runtime errors (`ActorStopped`, ...) live in `actors.runtime`.
"""

from __future__ import annotations

__all__ = ["DomainError", "DomainStopped", "InvalidInput", "SessionClosed", "UnknownSession"]


class DomainError(Exception):
    """Base of the errors the facade raises on purpose."""


class UnknownSession(DomainError):
    """No session with that id."""


class SessionClosed(DomainError):
    """The session is closed; it takes no more messages."""


class InvalidInput(DomainError, ValueError):
    """A value the domain refuses; the message says which and why."""


class DomainStopped(DomainError):
    """The domain is not running: not started yet, or shutting down."""
