"""The pure rules of leads: field checks, the "when we open" wording, the bounded lead book."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from actors.business_hours import OpeningHours
from actors.errors import InvalidInput
from actors.leads import Lead, LeadBook, check_lead, describe_opening, expectation_text
from actors.settings import BotSettings, BusinessHours

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    "email",
    [
        "ada@example.com",
        "ada.lovelace+boots@mail.example.co.uk",
        "o'brien@example.ie",
        "zoë@bücher.example",
        "user@xn--e1afmkfd.xn--p1ai",
        "a&b@example.com",
    ],
)
def test_plausible_addresses_are_taken(email: str) -> None:
    assert check_lead(f" {email} ", None, " Where? ") == (email, "", "Where?")


@pytest.mark.parametrize(
    "email",
    [
        "plain",
        "@example.com",
        "ada@",
        "ada@example",
        "ada@-example.com",
        "ada@example..com",
        "ada example@example.com",
        "ada@exa mple.com",
        "<ada@example.com>",
        "ada@example.com>",
        "ada\x00@example.com",
        "a" * 65 + "@example.com",
        "ada@" + "e" * 250 + ".com",
        "ada@example.c",
        "ada@example.123",
    ],
)
def test_implausible_addresses_are_refused(email: str) -> None:
    with pytest.raises(InvalidInput, match=r"^email: "):
        check_lead(email, None, "question")


@pytest.mark.parametrize("value", [None, 3, ["ada@example.com"]])
def test_fields_of_the_wrong_type_are_refused(value: object) -> None:
    with pytest.raises(InvalidInput, match=r"^email: "):
        check_lead(value, None, "question")
    with pytest.raises(InvalidInput, match=r"^question: "):
        check_lead("ada@example.com", None, value)
    if value is not None:
        with pytest.raises(InvalidInput, match=r"^name: "):
            check_lead("ada@example.com", value, "question")


def paris(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2027, 1, day, hour, minute, tzinfo=PARIS)


@pytest.mark.parametrize(
    ("now", "opening", "said"),
    [
        (paris(15, 7), paris(15, 9, 30), "today at 09:30 (Europe/Paris time)"),
        (paris(14, 19), paris(15, 9, 30), "tomorrow at 09:30 (Europe/Paris time)"),
        (paris(15, 19), paris(18, 9), "on Monday at 09:00 (Europe/Paris time)"),
        (paris(15, 19), paris(25, 9), "on Monday 25 January at 09:00 (Europe/Paris time)"),
    ],
)
def test_the_opening_in_words(now: dt.datetime, opening: dt.datetime, said: str) -> None:
    assert describe_opening(opening, now) == said


def test_the_opening_in_utc_and_from_another_zone() -> None:
    opening = dt.datetime(2027, 1, 15, 23, 30, tzinfo=zoneinfo.ZoneInfo("UTC"))
    now_in_tokyo = dt.datetime(2027, 1, 16, 1, 0, tzinfo=zoneinfo.ZoneInfo("Asia/Tokyo"))
    # 01:00 in Tokyo is still the 15th in UTC: the day is the team's, not the reader's
    assert describe_opening(opening, now_in_tokyo) == "today at 23:30 (UTC)"


def test_next_opening_over_a_holiday_gives_the_date() -> None:
    hours = OpeningHours.from_settings(
        BusinessHours(
            timezone="Europe/Paris",
            weekly={"mon": ("09:00-17:00",)},
            holidays=(dt.date(2027, 1, 18),),
        )
    )
    now = paris(15, 19)
    opening = hours.next_opening(now)
    assert opening is not None
    assert describe_opening(opening, now) == "on Monday 25 January at 09:00 (Europe/Paris time)"


def test_expectation_text_fills_the_placeholders_and_survives_stray_braces() -> None:
    texts = BotSettings(
        lead_open_text="Soon, {email} {nope} {",
        lead_closed_text="At {opening}, to {email}.",
    )
    open_now = expectation_text(texts, "a@b.co", open_now=True, opening=None, now=0.0)
    assert open_now == "Soon, a@b.co {nope} {"
    opening = paris(15, 9, 30)
    closed = expectation_text(
        texts, "a@b.co", open_now=False, opening=opening, now=paris(15, 8).timestamp()
    )
    assert closed == "At today at 09:30 (Europe/Paris time), to a@b.co."
    never = expectation_text(texts, "a@b.co", open_now=False, opening=None, now=0.0)
    assert never == "Soon, a@b.co {nope} {"  # no opening known: the open wording


def lead(n: int, session: str = "s1") -> Lead:
    return Lead(f"l{n}", session, "c1", "", "a@b.co", f"q{n}", float(n))


def test_the_book_keeps_the_latest_leads_and_counts_per_session() -> None:
    book = LeadBook(keep=3)
    for n in range(4):
        book.add(lead(n, "s1" if n < 2 else "s2"))
    assert [x.lead_id for x in book.all()] == ["l1", "l2", "l3"]
    assert (book.count_for("s1"), book.count_for("s2"), book.count_for("s9")) == (1, 2, 0)
    assert book.find("s1", "a@b.co", "q1") == lead(1)
    assert book.find("s1", "a@b.co", "q0") is None  # forgotten
    assert book.find("s2", "a@b.co", "q1") is None
    book.add(lead(4, "s2"))
    assert book.count_for("s1") == 0 and len(book) == 3
