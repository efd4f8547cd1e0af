"""What the customer API needs from the domain: the `ChatDomain` protocol.

Owns: the structural type of the domain facade the HTTP layer calls (the real one is
`actors.domain.Domain`); tests and the daemon pass that in, never a patched module. `mode()`
raising `UnknownSession` is how the API tells an unknown session (404) from a bad token (401),
since `check_token` answers False for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from actors.leads import Lead
from actors.ports import TranscriptLine
from actors.stats import DomainStats
from transport.chat_wire import EventLike

__all__ = ["ChatDomain", "SessionOpenedLike"]


class SessionOpenedLike(Protocol):
    @property
    def session_id(self) -> str: ...
    @property
    def customer_id(self) -> str: ...
    @property
    def token(self) -> str: ...


class ChatDomain(Protocol):
    async def open_session(
        self, customer_id: str | None, name: str | None, email: str | None
    ) -> SessionOpenedLike: ...

    def check_token(self, session_id: str, token: str) -> bool: ...

    def mode(self, session_id: str) -> str: ...

    def transcript(self, session_id: str) -> Sequence[TranscriptLine]: ...

    async def customer_says(self, session_id: str, text: str) -> int: ...

    async def close_session(self, session_id: str) -> None: ...

    def events_after(self, session_id: str, after_seq: int) -> Sequence[EventLike]: ...

    async def wait_events(self, session_id: str, after_seq: int) -> Sequence[EventLike]: ...

    def stats(self) -> DomainStats: ...

    async def leave_lead(
        self, session_id: str, email: str, question: str, name: str | None = None
    ) -> Lead: ...

    def leads(self) -> Sequence[Lead]: ...
