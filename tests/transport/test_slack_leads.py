"""Leads in Slack: the lead message's view, the Slack actor posting it in the leads channel of a
real (in-process) emulator, and the whole daemon from the chat API to that channel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import trio

import daemon
from actors.ports import PostLead, SlackCommand, TranscriptLine
from actors.settings import SlackSettings, parse_settings
from emulator import Emulator, EmulatorConfig
from transport.slack_actor import SlackActor
from transport.slack_leads import LEAD_EVENT, lead_post
from transport.slack_rate import RateLimits
from transport.slack_web import SlackWebClient

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
PING = "<!channel> <@U123> & <http://evil.example|click>"


def line(speaker: Any, text: str, at: float = 1.8e9) -> TranscriptLine:
    names = {"customer": ("c1", "Carol"), "bot": ("bot", "Bot"), "agent": ("U0", "Agent")}
    author_id, name = names[speaker]
    return TranscriptLine(speaker, author_id, name, text, at)


def command(**changes: Any) -> PostLead:
    base: dict[str, Any] = {
        "lead_id": "l_0123",
        "customer_id": "cust-1",
        "name": "Carol",
        "email": "carol@example.com",
        "question": "Do the Alpine boots run small?",
        "transcript": (line("customer", "I want a human"), line("bot", "Nobody is available")),
        "at": 1_800_000_000.0,
    }
    return PostLead(**(base | changes))


def texts_of(blocks: Any) -> list[str]:
    """Every mrkdwn text in the blocks: where Slack turns `<...>` into mentions and links
    (plain_text, as in the header, is shown as typed)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("type") == "mrkdwn" and isinstance(value.get("text"), str):
                found.append(value["text"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(blocks)
    return found


# --- the view --------------------------------------------------------------------------------


def test_the_lead_message_shows_who_how_to_answer_what_and_the_conversation() -> None:
    post = lead_post(command())
    [header, contact, question, conversation, footer] = post.blocks
    assert header["text"]["text"] == "New lead: Carol"
    fields = [f["text"] for f in contact["fields"]]
    assert fields[0] == "*Email*\n<mailto:carol@example.com|carol@example.com>"
    assert fields[2] == "*Customer*\n`cust-1`"
    assert fields[3].startswith("*Left*\n<!date^1800000000^")
    assert question["text"]["text"] == "*Question*\n> Do the Alpine boots run small?"
    assert conversation["text"]["text"] == (
        "*Conversation*\n*Carol* (customer): I want a human\n*Bot* (bot): Nobody is available"
    )
    assert "l_0123" in footer["elements"][0]["text"]
    assert post.metadata == {"event_type": LEAD_EVENT, "event_payload": {"lead_id": "l_0123"}}
    assert post.text.startswith("New lead from Carol (carol@example.com): Do the Alpine")


def test_customer_text_pings_nobody_and_links_nothing() -> None:
    post = lead_post(
        command(
            name=PING,
            question=PING,
            email="a&b@example.com",
            transcript=(line("customer", PING),),
        )
    )
    shown = [*texts_of(list(post.blocks)), post.text]
    assert all("<!channel>" not in t and "<@U123>" not in t for t in shown)
    assert all("<http://evil" not in t for t in shown)
    escaped = "&lt;!channel&gt; &lt;@U123&gt; &amp; &lt;http://evil.example|click&gt;"
    assert any(escaped in t for t in shown)
    assert post.blocks[0]["text"] == {
        "type": "plain_text",
        "text": f"New lead: {PING}",
        "emoji": False,
    }
    email_field = post.blocks[1]["fields"][0]["text"]
    assert email_field == "*Email*\na&amp;b@example.com"  # not made into a link


def test_a_nameless_customer_and_a_long_history_stay_within_slacks_limits() -> None:
    history = tuple(line("customer", f"message {n} " + "x" * 3_000) for n in range(100))
    post = lead_post(command(name="", question="q" * 20_000, transcript=history))
    assert post.blocks[0]["text"]["text"] == "New lead: Customer cust-1"
    assert len(post.blocks) <= 50
    for block in post.blocks:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3_000
        for field in block.get("fields", []):
            assert len(field["text"]) <= 2_000
    shown = "\n".join(texts_of(list(post.blocks)))
    assert "message 99" in shown  # the latest lines are kept
    assert "earlier lines not shown" in shown
    assert len(post.text) < 4_000


# --- the Slack actor and a real emulator -------------------------------------------------------


class Slack:
    """An emulator (port 0) with a public `leads` channel, and a Slack actor posting leads."""

    def __init__(
        self,
        actor: SlackActor,
        commands: trio.MemorySendChannel[SlackCommand],
        http: httpx.AsyncClient,
        url: str,
        leads_id: str,
    ) -> None:
        self.actor, self.commands, self.http, self.url = actor, commands, http, url
        self.leads_id = leads_id
        self.sent = 0

    async def execute(self, cmd: SlackCommand) -> None:
        """Send one command and wait until the actor has executed it."""
        self.sent += 1
        await self.commands.send(cmd)
        await self.actor.wait_commands_finished(self.sent)

    async def emu(self, path: str, **params: str) -> Any:
        response = await self.http.get(self.url + path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def messages(self, channel: str) -> list[dict[str, Any]]:
        return list((await self.emu("/_emu/messages", channel=channel))["messages"])

    async def bot_messages(self) -> list[dict[str, Any]]:
        """Every message posted, in any channel."""
        out = []
        for c in (await self.emu("/_emu/channels"))["channels"]:
            out += await self.messages(c["id"])
        return out


async def _ignore(fact: object) -> None:
    return None


@asynccontextmanager
async def slack_with_leads(leads_channel: str) -> AsyncIterator[Slack]:
    """`leads_channel` as in the settings; `{id}` stands for the created channel's id."""
    emulator = Emulator(EmulatorConfig())
    async with httpx.AsyncClient(timeout=5) as http, trio.open_nursery() as nursery:
        url = await nursery.start(emulator.run)
        creds = emulator.credentials
        web = SlackWebClient(creds.bot_token, api_url=url + "/api/", rate_limits=RateLimits.off())
        created = await web.call("conversations.create", name="leads")
        leads_id = created["channel"]["id"]
        settings = SlackSettings(
            mode="emulator",
            bot_token=creds.bot_token,
            app_token=creds.app_token,
            api_url=url + "/api/",
            leads_channel=leads_channel.replace("{id}", leads_id),
        )
        actor = SlackActor(web, settings, domain_deliver=_ignore, post_pause_s=0.01)
        send, receive = trio.open_memory_channel[SlackCommand](10)
        await nursery.start(actor.run, receive)
        try:
            yield Slack(actor, send, http, url, leads_id)
        finally:
            nursery.cancel_scope.cancel()
    await web.aclose()


@pytest.mark.parametrize("channel", ["leads", "#leads", "{id}"])
async def test_the_slack_actor_posts_a_lead_in_the_leads_channel(channel: str) -> None:
    with trio.fail_after(20):
        async with slack_with_leads(channel) as slack:
            await slack.execute(command(question=PING))
            [message] = await slack.messages(slack.leads_id)
            assert message["blocks"][0]["text"]["text"] == "New lead: Carol"
            assert any(t.startswith("*Question*\n> &lt;!channel&gt;") for t in texts_of(message))
            assert message["text"].startswith("New lead from Carol (carol@example.com)")
            shown = texts_of(message["blocks"])
            assert any("&lt;!channel&gt;" in t for t in shown)
            assert not any("<!channel>" in t for t in shown)
            assert slack.actor.leads.posted == 1
            # the next lead goes to the same channel (by the id Slack answered from now on)
            await slack.execute(command(lead_id="l_0124"))
            assert len(await slack.messages(slack.leads_id)) == 2
            assert len(await slack.bot_messages()) == 2


async def test_no_leads_channel_no_post_and_a_missing_channel_is_only_logged() -> None:
    with trio.fail_after(20):
        async with slack_with_leads("") as slack:
            await slack.execute(command())
            assert await slack.bot_messages() == []
            assert (slack.actor.leads.posted, slack.actor.leads.failed) == (0, 0)
        async with slack_with_leads("no-such-channel") as slack:
            await slack.execute(command())
            assert await slack.bot_messages() == []
            assert slack.actor.leads.failed == 1
            await slack.execute(command(lead_id="l_0125"))  # the actor goes on
            assert slack.actor.leads.failed == 2


# --- the whole daemon: a customer's lead lands in the emulator's leads channel -----------------


async def test_a_lead_left_through_the_chat_api_is_posted_and_outlives_a_restart(
    tmp_path: Path,
) -> None:
    settings = parse_settings(
        {
            "http": {"port": 0},
            "slack": {"leads_channel": "leads"},
            "emulator": {"port": 0, "agents": []},  # nobody to talk to
            "journal": {"path": str(tmp_path / "journal")},
            "log": {"level": "warning"},
        }
    )
    stop = trio.Event()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=10) as http:
            urls = await nursery.start(daemon.serve, settings, ROOT, stop)
            assert urls.emulator is not None
            emu = urls.emulator
            version = 0

            async def until(check: Callable[[], Awaitable[T | None]]) -> T:
                """`check()` once it is not None, re-checked whenever the workspace changes."""
                nonlocal version
                while (found := await check()) is None:
                    changes = await http.get(
                        emu + "/_emu/changes", params={"since": version, "wait": 5}
                    )
                    version = int(changes.json()["version"])
                return found

            opened = (await http.post(urls.chat + "/api/sessions", json={"name": "Dora"})).json()
            base = f"{urls.chat}/api/sessions/{opened['session_id']}"
            auth = {"Authorization": f"Bearer {opened['token']}"}
            said = await http.post(
                base + "/messages", json={"text": "talk to a human"}, headers=auth
            )
            assert said.status_code == 202
            seen: list[dict[str, Any]] = []
            while not any(e["type"] == "no_agent_available" for e in seen):
                answer = await http.get(
                    base + "/events", params={"after": len(seen), "wait": 5}, headers=auth
                )
                seen += answer.json()["events"]

            left = await http.post(
                base + "/lead",
                json={"email": "dora@example.com", "question": "Is the <b>Alpine</b> waterproof?"},
                headers=auth,
            )
            assert left.status_code == 201, left.text
            lead = left.json()
            assert (await http.get(urls.chat + "/api/leads")).json() == {"leads": [lead]}

            async def leads_channel() -> str | None:
                channels = (await http.get(emu + "/_emu/channels")).json()["channels"]
                return next((c["id"] for c in channels if c["name"] == "leads"), None)

            channel = await until(leads_channel)

            async def posted() -> dict[str, Any] | None:
                answer = await http.get(emu + "/_emu/messages", params={"channel": channel})
                messages = answer.json()["messages"]
                return messages[0] if messages else None

            message = await until(posted)
            shown = texts_of(message["blocks"])
            assert message["blocks"][0]["text"]["text"] == "New lead: Dora"
            assert any("<mailto:dora@example.com|dora@example.com>" in t for t in shown)
            assert any("&lt;b&gt;Alpine&lt;/b&gt; waterproof?" in t for t in shown)
            assert any("talk to a human" in t for t in shown)  # the conversation came along
            assert any(lead["id"] in t for t in shown)
            stop.set()

        # a restart replays the journal: the lead is still listed
        stop = trio.Event()
        async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=10) as http:
            urls = await nursery.start(daemon.serve, settings, ROOT, stop)
            assert (await http.get(urls.chat + "/api/leads")).json() == {"leads": [lead]}
            stop.set()
