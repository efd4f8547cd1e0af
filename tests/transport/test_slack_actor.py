"""SlackActor against the real emulator: offer DMs, their outcomes, clicks, presence, profiles.

Each test runs the emulator in-process on port 0 and the actor exactly as the daemon builds it
(Socket Mode on the emulator's app token), with a fake domain recording delivered facts.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from actors.ports import (
    AgentProfile,
    ConfirmPresence,
    FetchAgentProfile,
    OfferAnswered,
    OfferView,
    PostOffer,
    PresenceChanged,
    ResolveOffer,
    TellTooLate,
)
from actors.runtime import Reply
from tests.transport.slack_actor_harness import Harness, line, slack_harness
from transport.slack_errors import SlackApiError
from transport.slack_offers import Offers

DEADLINE = 15


def offer(h: Harness, offer_id: str = "o_1", agent: str = "alice", **changes: Any) -> OfferView:
    fields: dict[str, Any] = {
        "offer_id": offer_id,
        "escalation_id": "e_1",
        "agent_id": h.id(agent),
        "customer_id": "c42",
        "customer_name": "Carol",
        "last_message": "my order <!channel> never came",
        "excerpt": (line("customer", "hello"), line("bot", "How can I help?")),
        "expires_at": 1_700_000_045.0,
    }
    return OfferView(**(fields | changes))


async def offer_dm(h: Harness, agent: str = "alice", count: int = 1) -> tuple[str, list[Any]]:
    """The agent's DM with the app once it holds `count` messages."""

    async def check() -> tuple[str, list[Any]] | None:
        dms = [c for c in await h.channels() if c["is_im"] and h.id(agent) in c["members"]]
        if not dms:
            return None
        messages = await h.messages(dms[0]["id"])
        return (dms[0]["id"], messages) if len(messages) >= count else None

    return await h.until(check)


def action_ids(message: dict[str, Any]) -> list[str]:
    return [
        e["action_id"]
        for b in message.get("blocks", [])
        if b["type"] == "actions"
        for e in b["elements"]
    ]


async def test_post_offer_dms_the_agent_with_accept_and_ignore() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            await h.send(PostOffer(offer(h)))
            channel, (message,) = await offer_dm(h)
            assert action_ids(message) == ["offer_accept", "offer_ignore"]
            assert message["user"] == h.emulator.credentials.bot_user_id
            text = message["text"] + repr(message["blocks"])
            assert "Carol" in text and "&lt;!channel&gt;" in text and "<!channel>" not in text
            assert "<!date^1700000045^{time_secs}|" in text
            dm = await h.channel(channel)
            assert dm["is_im"] and set(dm["members"]) == {
                h.id("alice"),
                h.emulator.credentials.bot_user_id,
            }


@pytest.mark.parametrize(("action", "accepted"), [("offer_accept", True), ("offer_ignore", False)])
async def test_a_click_on_the_offer_reaches_the_domain(action: str, accepted: bool) -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            await h.send(PostOffer(offer(h)))
            channel, (message,) = await offer_dm(h)
            await h.click("alice", channel, message["ts"], action)
            assert await h.domain.next_fact() == OfferAnswered("o_1", h.id("alice"), accepted)


@pytest.mark.parametrize(
    ("outcome", "room", "expected"),
    [
        ("ignored", None, "Ignored"),
        ("missed", None, "Missed"),
        ("withdrawn", None, "Withdrawn"),
        ("accepted", "swivl_user_c42", "Accepted — go to #swivl_user_c42"),
    ],
)
async def test_resolve_offer_updates_the_dm_in_place(
    outcome: Any, room: str | None, expected: str
) -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            await h.send(PostOffer(offer(h)))
            await h.send(ResolveOffer("o_1", h.id("alice"), outcome, room))
            await h.settle()
            _, (message,) = await offer_dm(h)
            assert expected in message["text"]
            assert action_ids(message) == []
            assert "edited" in message


async def test_an_offer_posted_before_a_restart_is_found_and_resolved() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            view = offer(h)
            await h.send(PostOffer(view))
            await h.settle()
            # a restarted daemon knows nothing of the offer but its id
            restarted = Offers(h.web)
            await restarted.resolve(ResolveOffer("o_1", h.id("alice"), "withdrawn"))
            _, (message,) = await offer_dm(h)
            assert "Withdrawn" in message["text"] and action_ids(message) == []


async def test_an_unknown_offer_is_logged_and_nothing_changes() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            await h.send(PostOffer(offer(h)))
            await h.send(ResolveOffer("o_unknown", h.id("alice"), "missed"))
            await h.settle()
            _, (message,) = await offer_dm(h)
            assert action_ids(message) == ["offer_accept", "offer_ignore"]
            assert h.actor.statistics().lanes.failed == 0


async def test_tell_too_late_is_an_ephemeral_note_in_the_dm() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            await h.send(PostOffer(offer(h)))
            await h.send(ResolveOffer("o_1", h.id("alice"), "missed"))
            await h.send(TellTooLate("o_1", h.id("alice")))
            await h.settle()
            channel, messages = await offer_dm(h)
            assert len(messages) == 1  # nobody else sees it
            seen = await h.messages(channel, user=h.id("alice"))
            assert seen[-1]["ephemeral"] is True
            assert "already ended" in seen[-1]["text"]


async def test_offer_commands_keep_their_order_while_others_run_beside_them() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            for i in range(10):
                agent = "alice" if i % 2 else "bob"
                await h.send(PostOffer(offer(h, f"o_{i}", agent)))
                await h.send(ResolveOffer(f"o_{i}", h.id(agent), "ignored"))
            await h.settle()
            for agent in ("alice", "bob"):
                _, messages = await offer_dm(h, agent, count=5)
                assert len(messages) == 5
                assert all("Ignored" in m["text"] for m in messages)
            assert h.actor.statistics().lanes.failed == 0


async def test_a_slow_call_holds_up_no_other_command() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            slow = {"delay": {"share": 1.0, "seconds": 2.5, "methods": ["users.getPresence"]}}
            await h.emu("POST", "/_emu/faults", json=slow)
            reply: Reply[bool] = Reply()
            await h.send(ConfirmPresence(h.id("alice"), reply))
            await h.send(PostOffer(offer(h)))
            await offer_dm(h)  # the offer went out while users.getPresence still hangs
            assert not reply.answered
            assert await reply.receive() is True


async def test_confirm_presence_answers_from_users_get_presence() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            assert await h.ask(lambda r: ConfirmPresence(h.id("alice"), r)) is True
            await h.api_as("alice", "users.setPresence", presence="away")
            assert await h.ask(lambda r: ConfirmPresence(h.id("alice"), r)) is False
            with pytest.raises(SlackApiError, match="user_not_found"):
                await h.ask(lambda r: ConfirmPresence("U999999", r))


async def test_fetch_agent_profile_reads_users_info() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            profile = await h.ask(lambda r: FetchAgentProfile(h.id("alice"), r))
            assert isinstance(profile, AgentProfile)
            assert (profile.id, profile.real_name, profile.title) == (
                h.id("alice"),
                "Alice Moreau",
                "Support lead",
            )
            assert profile.display_name and profile.avatar_url.startswith("http")
            assert h.actor.profiles.avatars[h.id("alice")] == profile.avatar_url


async def test_a_failing_request_is_answered_with_its_error() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            with pytest.raises(SlackApiError, match="user_not_found"):
                await h.ask(lambda r: FetchAgentProfile("U404", r))
            # the actor goes on
            assert await h.ask(lambda r: ConfirmPresence(h.id("bob"), r)) is True


async def test_presence_polling_publishes_the_pool_then_only_changes() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness(agents=None, poll_interval_s=0.2) as h:
            alice, bob = h.id("alice"), h.id("bob")
            first = {await h.domain.next_fact(), await h.domain.next_fact()}
            assert first == {PresenceChanged(alice, True), PresenceChanged(bob, True)}
            await h.api_as("bob", "users.setPresence", presence="away")
            assert await h.domain.next_fact() == PresenceChanged(bob, False)
            await h.api_as("bob", "users.setPresence", presence="auto")
            assert await h.domain.next_fact() == PresenceChanged(bob, True)
            assert h.actor.statistics().presence.polls >= 4


async def test_closing_the_mailbox_finishes_held_commands_then_stops() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            await h.send(PostOffer(offer(h)))
            await h.send(ResolveOffer("o_1", h.id("alice"), "withdrawn"))
            await h.commands.aclose()
            await h.stopped.wait()
            _, (message,) = await offer_dm(h)
            assert "Withdrawn" in message["text"]
