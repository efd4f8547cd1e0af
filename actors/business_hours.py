"""When the support team is open: weekly windows in one timezone, minus holidays.

Owns: `OpeningHours`, built from the validated `business_hours` settings, answering `is_open(at)` and
`next_opening(at)` for aware datetimes. Pure: the caller passes the instant (the session uses the
wall clock; tests pass exact instants).

Windows are wall-clock times in the configured zone ("09:00-17:30"; an end of "24:00" is midnight at
the end of the day); a holiday is closed from its local midnight to the next. Daylight saving is
zoneinfo's: on the day clocks go back a window may be open twice over the repeated hour, and a window
starting in the hour that is skipped opens at the moment the clocks jump. No windows at all means
always open.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from actors.settings import BusinessHours

__all__ = ["OpeningHours"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _micros(hhmm: str) -> int:
    """Microseconds since midnight of "HH:MM" (24:00 allowed)."""
    hours, minutes = hhmm.split(":")
    return (int(hours) * 60 + int(minutes)) * 60_000_000


def _micros_of(t: dt.datetime) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond


def _require_aware(at: dt.datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"an aware datetime is required, got naive {at.isoformat()}")


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """Weekly windows per weekday (Monday = 0) as (start, end) microseconds since local midnight."""

    zone: zoneinfo.ZoneInfo
    weekly: tuple[tuple[tuple[int, int], ...], ...]
    holidays: frozenset[dt.date]
    always_open: bool

    @classmethod
    def from_settings(cls, settings: BusinessHours) -> OpeningHours:
        by_day: dict[str, tuple[str, ...]] = {str(day): ws for day, ws in settings.weekly.items()}
        weekly = tuple(
            tuple(
                sorted(
                    (_micros(start), _micros(end))
                    for start, end in (w.split("-") for w in by_day.get(day, ()))
                )
            )
            for day in _DAYS
        )
        return cls(
            zone=zoneinfo.ZoneInfo(settings.timezone),
            weekly=weekly,
            holidays=frozenset(settings.holidays),
            always_open=settings.always_open,
        )

    @classmethod
    def always(cls) -> OpeningHours:
        """Hours that are never closed (what empty `business_hours` settings mean)."""
        return cls.from_settings(BusinessHours())

    def is_open(self, at: dt.datetime) -> bool:
        """Whether the team is open at the instant `at` (an aware datetime)."""
        _require_aware(at)
        if self.always_open:
            return True
        local = at.astimezone(self.zone)
        if local.date() in self.holidays:
            return False
        now = _micros_of(local)
        return any(start <= now < end for start, end in self.weekly[local.weekday()])

    def next_opening(self, at: dt.datetime) -> dt.datetime | None:
        """The first instant at or after `at` when the team is open (`at` itself if open now).

        None when no weekday has any window. The result is in the configured zone; compare it
        with `<`/`>` or after `.astimezone(UTC)`: Python's `==` across zones is False for a time in
        the hour repeated when the clocks go back.
        """
        _require_aware(at)
        if self.is_open(at):
            return at.astimezone(self.zone)
        at_utc = at.astimezone(dt.UTC)
        first_day = at.astimezone(self.zone).date()
        # Within two weeks every weekday with windows comes round again, even if a window fell
        # in the hour skipped by a clock change; each holiday can only push that one day further.
        for offset in range(15 + len(self.holidays)):
            day = first_day + dt.timedelta(days=offset)
            windows = self.weekly[day.weekday()]
            if day in self.holidays or not windows:
                continue
            # The team opens at a window's start, or when the clocks jump into a window.
            candidates = [
                self._instant(day, start, fold) for start, _ in windows for fold in (0, 1)
            ]
            candidates.append(self._clock_change(day))
            opens = [c for c in candidates if c is not None and c >= at_utc and self.is_open(c)]
            if opens:
                return min(opens).astimezone(self.zone)
        return None

    def _instant(self, day: dt.date, micros: int, fold: int) -> dt.datetime | None:
        """The UTC instant of a wall-clock time on `day` (None if the clocks skip it)."""
        wall = dt.datetime.combine(day, dt.time()) + dt.timedelta(microseconds=micros)
        instant = wall.replace(tzinfo=self.zone, fold=fold).astimezone(dt.UTC)
        return instant if instant.astimezone(self.zone).replace(tzinfo=None) == wall else None

    def _clock_change(self, day: dt.date) -> dt.datetime | None:
        """The UTC instant the zone's offset changes on `day`, if it does (at most once a day)."""
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=self.zone)
        lo = int(midnight.timestamp())
        hi = int((midnight + dt.timedelta(days=1)).timestamp())
        before, after = self._offset_at(lo), self._offset_at(hi)
        if before == after:
            return None
        while hi - lo > 1:  # offsets change on whole seconds
            mid = (lo + hi) // 2
            if self._offset_at(mid) == before:
                lo = mid
            else:
                hi = mid
        return dt.datetime.fromtimestamp(hi, dt.UTC)

    def _offset_at(self, timestamp: int) -> dt.timedelta | None:
        return dt.datetime.fromtimestamp(timestamp, self.zone).utcoffset()
