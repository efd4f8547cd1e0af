"""Leads: the contact details and question a customer leaves when nobody can help right now.

Owns `Lead` (what `GET /api/leads` lists), `LeadBook` (the leads of this run, bounded, with the
per-session count and lookup that make a retried request idempotent), `check_lead` (the domain's
rules for the fields) and the text that tells the customer when to expect an answer
(`expectation_text`, `describe_opening`). Pure: the session's step is `actors.session_leads`.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections import Counter, deque
from dataclasses import dataclass

from actors.errors import DomainError, InvalidInput
from actors.facts import LeadLeft
from actors.settings import BotSettings

__all__ = [
    "MAX_LEADS_PER_SESSION",
    "MAX_QUESTION_CHARS",
    "TRANSCRIPT_LINES",
    "Lead",
    "LeadBook",
    "TooManyLeads",
    "check_lead",
    "describe_opening",
    "expectation_text",
    "lead_of",
]

MAX_LEADS_PER_SESSION = 5
MAX_QUESTION_CHARS = 10_000
MAX_NAME_CHARS = 200
MAX_EMAIL_CHARS = 254  # the longest address SMTP can carry
TRANSCRIPT_LINES = 100
"""Transcript lines kept with a lead: the latest ones of the customer (all their sessions)."""

# Pragmatic, not RFC 5322: one @, a local part without spaces, controls or the characters that
# mean something in Slack mrkdwn or mail headers, and a dotted domain (IDN labels allowed) whose
# last label is letters or punycode.
_EMAIL = re.compile(
    r"[^\s\x00-\x1f\x7f@<>|,;:\"()\[\]\\]{1,64}"
    r"@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})",
    re.IGNORECASE,
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


class TooManyLeads(DomainError):
    """This session has already left `MAX_LEADS_PER_SESSION` leads."""


@dataclass(frozen=True, slots=True)
class Lead:
    """A customer's contact details and question; `at` is UNIX epoch seconds."""

    lead_id: str
    session_id: str
    customer_id: str
    name: str
    email: str
    question: str
    at: float


def lead_of(fact: LeadLeft) -> Lead:
    """The lead a `LeadLeft` fact records (what a journal replay puts back in the book)."""
    return Lead(
        fact.lead_id,
        fact.session_id,
        fact.customer_id,
        fact.name,
        fact.email,
        fact.question,
        fact.at,
    )


class LeadBook:
    """The latest `keep` leads, oldest first, with a per-session index."""

    __slots__ = ("_keep", "_leads", "_per_session")

    def __init__(self, keep: int = 10_000) -> None:
        self._keep = keep
        self._leads: deque[Lead] = deque()
        self._per_session: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._leads)

    def add(self, lead: Lead) -> None:
        self._leads.append(lead)
        self._per_session[lead.session_id] += 1
        while len(self._leads) > self._keep:
            old = self._leads.popleft()
            self._per_session[old.session_id] -= 1
            if self._per_session[old.session_id] <= 0:
                del self._per_session[old.session_id]

    def all(self) -> tuple[Lead, ...]:
        return tuple(self._leads)

    def count_for(self, session_id: str) -> int:
        return self._per_session.get(session_id, 0)

    def find(self, session_id: str, email: str, question: str) -> Lead | None:
        """A lead this session already left with the same email and question."""
        if not self.count_for(session_id):
            return None
        for lead in reversed(self._leads):
            if (lead.session_id, lead.email, lead.question) == (session_id, email, question):
                return lead
        return None


def check_lead(email: object, name: object, question: object) -> tuple[str, str, str]:
    """The lead's (email, name, question), trimmed; `InvalidInput` naming the field otherwise."""
    if not isinstance(email, str) or not email.strip():
        raise InvalidInput("email: an email address is required")
    email = email.strip()
    if len(email) > MAX_EMAIL_CHARS or not _EMAIL.fullmatch(email):
        raise InvalidInput("email: not an email address like name@example.com")
    if name is None:
        name = ""
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"name: at most {MAX_NAME_CHARS} characters of text")
    if not isinstance(question, str) or not question.strip():
        raise InvalidInput("question: say what you would like us to answer")
    question = question.strip()
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidInput(f"question: at most {MAX_QUESTION_CHARS} characters")
    return email, name.strip(), question


def describe_opening(opening: dt.datetime, now: dt.datetime) -> str:
    """When the team opens, for the customer: "today at 14:00 (Europe/Paris time)", "tomorrow
    at 09:00 (UTC)", "on Monday at 09:00 (...)", or with the date beyond the coming week."""
    local_now = now.astimezone(opening.tzinfo)
    days = (opening.date() - local_now.date()).days
    clock = opening.strftime("%H:%M")
    if days <= 0:
        when = f"today at {clock}"
    elif days == 1:
        when = f"tomorrow at {clock}"
    elif days < 7:
        when = f"on {_WEEKDAYS[opening.weekday()]} at {clock}"
    else:
        day = f"{_WEEKDAYS[opening.weekday()]} {opening.day} {_MONTHS[opening.month - 1]}"
        when = f"on {day} at {clock}"
    zone = opening.tzinfo
    name = zone.key if isinstance(zone, zoneinfo.ZoneInfo) else str(zone)
    return f"{when} (UTC)" if name in ("UTC", "Etc/UTC") else f"{when} ({name} time)"


def expectation_text(
    texts: BotSettings, email: str, *, open_now: bool, opening: dt.datetime | None, now: float
) -> str:
    """What the customer is told after leaving a lead: `bot.lead_open_text`, or, when the team
    is closed and will open, `bot.lead_closed_text` with `{opening}` filled in."""
    if open_now or opening is None:
        template, when = texts.lead_open_text, ""
    else:
        template = texts.lead_closed_text
        when = describe_opening(opening, dt.datetime.fromtimestamp(now, dt.UTC))
    # Plain replacement, not str.format: a stray brace in a configured text never fails.
    return template.replace("{email}", email).replace("{opening}", when)
