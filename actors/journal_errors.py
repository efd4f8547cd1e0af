"""The journal's error tree: everything the durable journal raises, in one place.

Owns the exception hierarchy of `actors.journal`:

    JournalError                 any problem of the journal
    ├── JournalCorrupt           damaged data that recovery must not skip silently (file + offset)
    │   └── UnsupportedVersion   a valid record written by a newer schema version
    ├── JournalClosed            the journal is not running (not started yet, or stopped)
    ├── JournalFailed            a write or fsync failed; the journal stops and refuses more work
    └── RecordInvalid            a record or snapshot that cannot be journaled (also a ValueError)
"""

from __future__ import annotations

__all__ = [
    "JournalClosed",
    "JournalCorrupt",
    "JournalError",
    "JournalFailed",
    "RecordInvalid",
    "UnsupportedVersion",
]


class JournalError(Exception):
    """Base class of every error the journal raises."""


class JournalCorrupt(JournalError):
    """Damage in the middle of the journal: the daemon must not start on it without `repair`.

    `path` names the damaged file and `offset` the byte where the damage starts (None when the
    problem is a missing range of records rather than a place in one file).
    """

    def __init__(self, message: str, *, path: str, offset: int | None = None) -> None:
        where = f"{path}" if offset is None else f"{path} at offset {offset}"
        super().__init__(f"{message} ({where})")
        self.path = path
        self.offset = offset


class UnsupportedVersion(JournalCorrupt):
    """A record or snapshot with an intact checksum but a schema version this code cannot read."""


class JournalClosed(JournalError):
    """The journal is not accepting work: not started yet, or shut down."""


class JournalFailed(JournalError):
    """Writing or syncing the journal failed; nothing after the failure is durable."""


class RecordInvalid(JournalError, ValueError):
    """A record (or snapshot state) that cannot be encoded, or that uses a reserved key or type."""
