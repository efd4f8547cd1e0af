"""Opening hours at exact instants: window edges, 24:00, holidays, daylight saving, next opening."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.business_hours import OpeningHours
from actors.settings import BusinessHours, parse_settings

UTC = dt.UTC
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def hours(**business_hours: Any) -> OpeningHours:
    """Opening hours from a `business_hours` settings section, validated like settings.yaml."""
    return OpeningHours.from_settings(
        parse_settings({"business_hours": business_hours}).business_hours
    )


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def in_utc(at: dt.datetime | None) -> dt.datetime | None:
    """`==` across zones is False in a repeated hour (PEP 495), so compare such instants in UTC."""
    return None if at is None else at.astimezone(UTC)


OFFICE = hours(
    timezone="Europe/Paris",
    weekly={**{d: ["09:00-17:30"] for d in WEEKDAYS}, "sat": ["10:00-12:00", "13:00-24:00"]},
    holidays=["2026-12-25"],
)


def test_empty_settings_are_always_open() -> None:
    always = OpeningHours.from_settings(BusinessHours())
    assert always == OpeningHours.always()
    for at in (utc(2026, 1, 1), utc(2026, 12, 25, 3, 4, 5), dt.datetime(2026, 7, 4, tzinfo=PARIS)):
        assert always.is_open(at)
        assert always.next_opening(at) == at


def test_a_window_is_open_from_its_start_up_to_but_not_including_its_end() -> None:
    # Monday 2026-06-01, Paris is UTC+2 in summer.
    assert not OFFICE.is_open(utc(2026, 6, 1, 6, 59, 59, 999_999))
    assert OFFICE.is_open(utc(2026, 6, 1, 7, 0))
    assert OFFICE.is_open(utc(2026, 6, 1, 15, 29, 59, 999_999))
    assert not OFFICE.is_open(utc(2026, 6, 1, 15, 30))


def test_the_same_window_in_winter_is_an_hour_later_in_utc() -> None:
    # Monday 2026-01-05, Paris is UTC+1.
    assert not OFFICE.is_open(utc(2026, 1, 5, 7, 59, 59))
    assert OFFICE.is_open(utc(2026, 1, 5, 8, 0))
    assert not OFFICE.is_open(utc(2026, 1, 5, 16, 30))


def test_any_timezone_of_the_instant_gives_the_same_answer() -> None:
    new_york = zoneinfo.ZoneInfo("America/New_York")
    at = utc(2026, 6, 1, 7, 0)
    assert OFFICE.is_open(at.astimezone(new_york))
    assert OFFICE.is_open(at.astimezone(PARIS))


def test_a_day_with_a_break_and_a_window_ending_at_midnight() -> None:
    # Saturday 2026-06-06: 10:00-12:00 and 13:00-24:00 local (UTC+2).
    assert OFFICE.is_open(utc(2026, 6, 6, 9, 59))
    assert not OFFICE.is_open(utc(2026, 6, 6, 10, 0))  # 12:00 local, lunch
    assert OFFICE.next_opening(utc(2026, 6, 6, 10, 30)) == utc(2026, 6, 6, 11, 0)
    assert OFFICE.is_open(utc(2026, 6, 6, 21, 59, 59, 999_999))  # 23:59:59.999999 local
    assert not OFFICE.is_open(utc(2026, 6, 6, 22, 0))  # Sunday 00:00 local: closed


def test_a_holiday_is_closed_all_day_in_the_configured_zone() -> None:
    always = hours(
        timezone="Europe/Paris",
        weekly={d: ["00:00-24:00"] for d in (*WEEKDAYS, "sat", "sun")},
        holidays=["2026-12-25"],
    )
    assert always.is_open(utc(2026, 12, 24, 22, 59, 59, 999_999))
    assert not always.is_open(utc(2026, 12, 24, 23, 0))  # midnight in Paris
    assert not always.is_open(utc(2026, 12, 25, 22, 59, 59))
    assert always.is_open(utc(2026, 12, 25, 23, 0))
    assert always.next_opening(utc(2026, 12, 25, 12, 0)) == utc(2026, 12, 25, 23, 0)


def test_next_opening_is_now_when_open() -> None:
    at = utc(2026, 6, 1, 9, 0)
    opening = OFFICE.next_opening(at)
    assert opening == at
    assert opening is not None and opening.tzinfo == PARIS


def test_next_opening_after_closing_on_friday_is_saturday_morning() -> None:
    opening = OFFICE.next_opening(utc(2026, 6, 5, 16, 0))  # Friday 18:00 local
    assert opening == dt.datetime(2026, 6, 6, 10, 0, tzinfo=PARIS)
    assert opening is not None and opening.tzinfo == PARIS


def test_next_opening_on_sunday_is_monday_morning() -> None:
    assert OFFICE.next_opening(utc(2026, 6, 7, 12, 0)) == dt.datetime(
        2026, 6, 8, 9, 0, tzinfo=PARIS
    )


def test_next_opening_skips_holidays() -> None:
    # Thursday 2026-12-24 after closing; Friday the 25th is a holiday; Saturday opens at 10:00.
    assert OFFICE.next_opening(utc(2026, 12, 24, 17, 0)) == dt.datetime(
        2026, 12, 26, 10, 0, tzinfo=PARIS
    )


def test_next_opening_skips_a_run_of_holidays() -> None:
    weekdays = hours(
        timezone="UTC",
        weekly={d: ["09:00-17:00"] for d in WEEKDAYS},
        holidays=[f"2026-08-{day:02d}" for day in range(1, 32)],
    )
    assert weekdays.next_opening(utc(2026, 7, 31, 18, 0)) == utc(2026, 9, 1, 9, 0)


def test_next_opening_is_none_when_no_day_has_a_window() -> None:
    never = hours(timezone="UTC", weekly={"mon": []})
    assert not never.is_open(utc(2026, 6, 1, 12, 0))
    assert never.next_opening(utc(2026, 6, 1, 12, 0)) is None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        OFFICE.is_open(dt.datetime(2026, 6, 1, 9, 0))
    with pytest.raises(ValueError, match="aware datetime"):
        OFFICE.next_opening(dt.datetime(2026, 6, 1, 9, 0))


# Paris, 2026-03-29: at 01:00 UTC the clocks jump from 02:00 to 03:00 (UTC+1 -> UTC+2).
# Paris, 2026-10-25: at 01:00 UTC the clocks go back from 03:00 to 02:00 (UTC+2 -> UTC+1).


def test_a_window_follows_the_wall_clock_across_spring_forward() -> None:
    sundays = hours(timezone="Europe/Paris", weekly={"sun": ["09:00-17:00"]})
    assert sundays.next_opening(utc(2026, 3, 21, 18, 0)) == utc(2026, 3, 22, 8, 0)  # UTC+1
    assert sundays.next_opening(utc(2026, 3, 28, 18, 0)) == utc(2026, 3, 29, 7, 0)  # UTC+2
    assert not sundays.is_open(utc(2026, 3, 29, 6, 59, 59))
    assert sundays.is_open(utc(2026, 3, 29, 7, 0))
    assert not sundays.is_open(utc(2026, 3, 29, 15, 0))


def test_a_window_starting_in_the_skipped_hour_opens_when_the_clocks_jump() -> None:
    night = hours(timezone="Europe/Paris", weekly={"sun": ["02:30-04:00"]})
    assert not night.is_open(utc(2026, 3, 29, 0, 59, 59))  # 01:59:59 local
    assert night.is_open(utc(2026, 3, 29, 1, 0))  # 03:00 local
    assert night.next_opening(utc(2026, 3, 28, 12, 0)) == utc(2026, 3, 29, 1, 0)
    assert not night.is_open(utc(2026, 3, 29, 2, 0))  # 04:00 local


def test_a_window_entirely_in_the_skipped_hour_does_not_open_that_day() -> None:
    gap = hours(timezone="Europe/Paris", weekly={"sun": ["02:10-02:40"]})
    assert gap.next_opening(utc(2026, 3, 28, 12, 0)) == utc(2026, 4, 5, 0, 10)  # a week later


def test_the_repeated_hour_opens_twice_when_the_clocks_go_back() -> None:
    twice = hours(timezone="Europe/Paris", weekly={"sun": ["02:00-02:30"]})
    assert twice.is_open(utc(2026, 10, 25, 0, 0))  # 02:00 CEST
    assert not twice.is_open(utc(2026, 10, 25, 0, 30))  # 02:30 CEST
    assert in_utc(twice.next_opening(utc(2026, 10, 25, 0, 45))) == utc(2026, 10, 25, 1, 0)
    assert twice.is_open(utc(2026, 10, 25, 1, 29))
    assert not twice.is_open(utc(2026, 10, 25, 1, 30))


def test_going_back_into_a_window_reopens_it_at_the_clock_change() -> None:
    late = hours(timezone="Europe/Paris", weekly={"sun": ["01:30-02:30"]})
    assert not late.is_open(utc(2026, 10, 25, 0, 40))  # 02:40 CEST
    opening = late.next_opening(utc(2026, 10, 25, 0, 40))
    assert in_utc(opening) == utc(2026, 10, 25, 1, 0)
    assert opening is not None and (opening.hour, opening.minute, opening.fold) == (2, 0, 1)  # CET


windows = st.lists(
    st.tuples(st.integers(0, 47), st.integers(1, 48)).filter(lambda w: w[0] < w[1]), max_size=2
)


def _window(w: tuple[int, int]) -> str:
    start, end = w
    return f"{start // 2:02d}:{start % 2 * 30:02d}-{end // 2:02d}:{end % 2 * 30:02d}"


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe"]),
    week=st.lists(windows, min_size=7, max_size=7),
    holidays=st.lists(st.dates(dt.date(2026, 1, 1), dt.date(2026, 12, 31)), max_size=5),
    at=st.datetimes(dt.datetime(2026, 1, 1), dt.datetime(2026, 12, 31), timezones=st.just(UTC)),
    probes=st.lists(st.floats(0, 1), min_size=20, max_size=20),
)
def test_next_opening_is_open_and_nothing_before_it_is(
    zone: str,
    week: list[list[tuple[int, int]]],
    holidays: list[dt.date],
    at: dt.datetime,
    probes: list[float],
) -> None:
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    opening_hours = hours(
        timezone=zone,
        weekly={day: [_window(w) for w in ws] for day, ws in zip(days, week, strict=True)},
        holidays=[h.isoformat() for h in holidays],
    )
    opening = opening_hours.next_opening(at)
    if opening is None:
        assert not any(week)
        return
    assert opening >= at
    assert opening_hours.is_open(opening)
    span = opening - at
    for p in probes:
        probe = at + span * p
        if probe < opening:
            assert not opening_hours.is_open(probe)
