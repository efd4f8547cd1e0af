"""Leads through the domain's facade: a customer nobody could help leaves their email and question;
it is journaled with the transcript, sent to Slack, listed, and the customer told when to
expect an answer (design §2.5, issue "leads")."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors.errors import InvalidInput, SessionClosed, UnknownSession
from actors.facts import BotReplied, EscalationEnded, LeadLeft
from actors.leads import MAX_LEADS_PER_SESSION, TooManyLeads
from actors.ports import PostLead, TranscriptLine
from tests.actors.harness import EPOCH, Harness
from tests.actors.office import OPENS_AT, office
from tests.actors.restore_harness import restarted

EMAIL = "ada@example.com"


async def nobody_available(h: Harness, customer_id: str = "cust-1") -> str:
    """A session whose request for a person found nobody (or the team closed)."""
    session = await h.customer(customer_id, name="Ada Lovelace")
    seq = await h.escalate(session, "I want a human")
    while "no_agent_available" not in h.event_types(session):
        await h.domain.wait_events(session, seq)
        seq = len(h.domain.events_after(session, 0))
    return session


async def test_a_lead_is_journaled_with_the_transcript_posted_and_listed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with office(present=()) as h:  # open, but no agent is there
        await trio.sleep(OPENS_AT)
        session = await nobody_available(h)
        [ended] = h.sink.of_type(EscalationEnded)
        assert ended.reason == "nobody_available"
        told = len(h.domain.events_after(session, 0))

        lead = await h.domain.leave_lead(session, f"  {EMAIL} ", "Can I return worn boots?")
        await h.settle()

        assert (lead.email, lead.question, lead.name) == (
            EMAIL,
            "Can I return worn boots?",
            "Ada Lovelace",
        )
        assert (lead.session_id, lead.at) == (session, EPOCH + OPENS_AT)
        assert h.domain.leads() == (lead,)

        # journaled first, with the whole conversation so far
        [left] = h.sink.of_type(LeadLeft)
        assert left.lead_id == lead.lead_id and left.customer_id == lead.customer_id
        assert [(line.speaker, line.text) for line in left.transcript] == [
            ("customer", "I want a human"),
            ("bot", h.texts.searching_text),
            ("bot", h.texts.no_agent_text),
        ]
        facts = h.sink.facts
        confirmation = h.sink.of_type(BotReplied)[-1]
        assert facts.index(left) < facts.index(confirmation)

        # the customer is told where and when: the team is open, so as soon as someone is free
        [event] = h.domain.events_after(session, told)
        expected = (
            f"Thanks! We have your question and will answer you at {EMAIL} "
            "as soon as one of us is free."
        )
        assert (event.type, event.text) == ("bot_message", expected)
        assert (confirmation.seq, confirmation.text) == (event.seq, expected)

        # and the Slack actor is asked to post it, with the same transcript
        [post] = h.slack.of(PostLead)
        assert post == PostLead(
            lead.lead_id,
            lead.customer_id,
            "Ada Lovelace",
            EMAIL,
            "Can I return worn boots?",
            left.transcript,
            EPOCH + OPENS_AT,
        )
        assert h.domain.mode(session) == "bot"  # the bot goes on answering


@pytest.mark.parametrize(
    ("at", "when"),
    [
        (0.0, "today at 09:30 (Europe/Paris time)"),  # Friday 09:00 in Paris
        (11 * 3600.0, "on Monday at 09:30 (Europe/Paris time)"),  # Friday 20:00
        (40 * 3600.0, "tomorrow at 09:30 (Europe/Paris time)"),  # Sunday 01:00
    ],
)
async def test_out_of_hours_the_customer_is_told_when_we_open(
    autojump_clock: trio.testing.MockClock, at: float, when: str
) -> None:
    async with office() as h:
        await trio.sleep(at)
        session = await nobody_available(h)
        assert h.domain.events_after(session, 0)[-1].text == h.texts.closed_text
        await h.domain.leave_lead(session, EMAIL, "Do you have the Alpine jacket in XL?")
        last = h.domain.events_after(session, 0)[-1]
        assert last.text == (
            f"Thanks! We have your question and will answer you at {EMAIL} once we open, {when}."
        )
        await h.settle()
        assert len(h.slack.of(PostLead)) == 1


async def test_a_retried_lead_is_left_once_and_a_session_leaves_a_few_at_most(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with office(present=()) as h:
        session = await nobody_available(h)
        first = await h.domain.leave_lead(session, EMAIL, "Where is my order 1234?", name="Ada")
        again = await h.domain.leave_lead(session, EMAIL, "Where is my order 1234?", name="Ada")
        assert again == first
        await h.settle()
        assert len(h.sink.of_type(LeadLeft)) == 1 and len(h.slack.of(PostLead)) == 1
        for n in range(2, MAX_LEADS_PER_SESSION + 1):
            await h.domain.leave_lead(session, EMAIL, f"question {n}")
        events = len(h.domain.events_after(session, 0))
        with pytest.raises(TooManyLeads):
            await h.domain.leave_lead(session, EMAIL, "one too many")
        assert len(h.domain.leads()) == MAX_LEADS_PER_SESSION
        assert len(h.domain.events_after(session, 0)) == events
        # another customer is not affected
        other = await nobody_available(h, "cust-2")
        await h.domain.leave_lead(other, "bo@example.org", "Hello?")
        assert [lead.session_id for lead in h.domain.leads()][-1] == other


@pytest.mark.parametrize(
    ("email", "question", "name", "field"),
    [
        ("", "question", None, "email"),
        ("not-an-email", "question", None, "email"),
        ("two@@example.com", "question", None, "email"),
        ("ada@localhost", "question", None, "email"),
        ("ada <ada@example.com>", "question", None, "email"),
        ("ada@example.com\n", "question", None, None),  # trimmed: fine
        ("a|b@example.com", "question", None, "email"),
        ("ada@example.com", "   ", None, "question"),
        ("ada@example.com", "x" * 10_001, None, "question"),
        ("ada@example.com", "question", "n" * 201, "name"),
    ],
)
async def test_bad_fields_are_refused_and_nothing_is_left(
    autojump_clock: trio.testing.MockClock,
    email: str,
    question: str,
    name: str | None,
    field: str | None,
) -> None:
    async with office(present=()) as h:
        session = await nobody_available(h)
        before = (len(h.sink.facts), len(h.domain.events_after(session, 0)))
        if field is None:
            await h.domain.leave_lead(session, email, question, name)
            assert len(h.domain.leads()) == 1
            return
        with pytest.raises(InvalidInput, match=rf"^{field}: "):
            await h.domain.leave_lead(session, email, question, name)
        await h.settle()
        assert (len(h.sink.facts), len(h.domain.events_after(session, 0))) == before
        assert h.domain.leads() == () and h.slack.of(PostLead) == []


async def test_closed_and_unknown_sessions_leave_no_lead(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with office(present=()) as h:
        session = await nobody_available(h)
        await h.domain.close_session(session)
        with pytest.raises(SessionClosed):
            await h.domain.leave_lead(session, EMAIL, "still there?")
        with pytest.raises(UnknownSession):
            await h.domain.leave_lead("s_nope", EMAIL, "hello")
        assert h.domain.leads() == () and h.sink.of_type(LeadLeft) == []


async def test_a_lead_names_the_customer_as_given_or_as_they_opened_the_chat(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with office(present=()) as h:
        session = await nobody_available(h)
        lead = await h.domain.leave_lead(session, EMAIL, "Size guide?", name="  Countess  ")
        assert lead.name == "Countess"
        anonymous = (await h.domain.open_session(None, None, None)).session_id
        nameless = await h.domain.leave_lead(anonymous, EMAIL, "Size guide, please")
        assert nameless.name == ""  # Slack shows "Customer <id>"
        await h.settle()
        [_, post] = h.slack.of(PostLead)
        assert post.name == "" and post.transcript == ()


async def test_leads_survive_a_restart_from_the_journal_and_from_a_snapshot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with office(present=()) as h:
        session = await nobody_available(h)
        lead = await h.domain.leave_lead(session, EMAIL, "Gift wrapping?")
        facts = list(h.sink.facts)
        [left] = h.sink.of_type(LeadLeft)
    assert left.transcript and all(isinstance(x, TranscriptLine) for x in left.transcript)
    for snapshot_after in (None, len(facts)):
        async with restarted(facts, snapshot_after=snapshot_after) as again:
            assert again.domain.leads() == (lead,)
            # a retry after the restart still finds it
            assert await again.domain.leave_lead(session, EMAIL, "Gift wrapping?") == lead
            assert again.sink.of_type(LeadLeft) == []
