"""The chat widget in headless Chromium, served by the real chat server over the real domain.

The server and the domain run in the test's trio loop; Playwright's sync API drives Chromium from
a worker thread (`trio.to_thread.run_sync`), and plays the agent by calling back into the loop
(`trio.from_thread.run`) with the Slack facts an agent's clicks and messages become. The bot is
the knowledge-base bot with the shipped example knowledge base. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trio

from actors.domain import Domain
from actors.facts import MemoryFactSink
from actors.knowledge_base import load_knowledge_base
from actors.knowledge_bot import KnowledgeBot
from actors.ports import (
    AgentProfile,
    ConfirmPresence,
    EndTakeoverRequested,
    FetchAgentProfile,
    OfferAnswered,
    OfferView,
    OpenRoom,
    PostOffer,
    PresenceChanged,
    RelayToRoom,
    RoomMessagePosted,
    RoomOpened,
    SlackCommand,
)
from actors.settings import BotSettings, HttpSettings, RoutingSettings
from transport.chat_api import WidgetConfig
from transport.chat_server import ChatServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
XSS = "<img src=x onerror=alert(1)>"
WAIT_MS = 10_000
ALICE = AgentProfile("U01", "Alice", "Alice Moreau", "Support lead", "")


class ScriptedSlack:
    """The Slack side, as the domain sees it: answers its requests and records the rest."""

    def __init__(self) -> None:
        self.send, self._receive = trio.open_memory_channel[SlackCommand](1000)
        self.offers: trio.MemorySendChannel[OfferView]
        self.offers, self._offers = trio.open_memory_channel[OfferView](10)
        self.rooms: list[str] = []
        self.relayed: list[str] = []
        self._relayed_changed = trio.Event()
        self._numbers = itertools.count(1)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for command in self._receive:
            match command:
                case ConfirmPresence(_, reply):
                    reply.send(True)
                case FetchAgentProfile(_, reply):
                    reply.send(ALICE)
                case OpenRoom(reply=reply):
                    room = f"C{next(self._numbers):04d}"
                    self.rooms.append(room)
                    reply.send(RoomOpened(room, f"swivl_user_{command.customer_id}"))
                case PostOffer(offer):
                    await self.offers.send(offer)
                case RelayToRoom(line=line):
                    self.relayed.append(line.text)
                    self._relayed_changed.set()
                    self._relayed_changed = trio.Event()
                case _:
                    pass

    async def next_offer(self) -> OfferView:
        return await self._offers.receive()

    async def wait_relayed(self, text: str) -> None:
        while text not in self.relayed:
            await self._relayed_changed.wait()


class Site:
    """The running server and domain; `agent(...)` plays the agent from the browser's thread."""

    def __init__(self, domain: Domain, slack: ScriptedSlack, base_url: str) -> None:
        self.domain, self.slack, self.base_url = domain, slack, base_url
        self.offers: list[OfferView] = []
        self._messages = itertools.count(1)

    async def accept(self) -> None:
        offer = await self.slack.next_offer()
        self.offers.append(offer)
        await self.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, True))

    async def say(self, text: str) -> None:
        message_id = f"m{next(self._messages)}"
        await self.domain.deliver(RoomMessagePosted(self.slack.rooms[-1], "U01", text, message_id))

    async def end(self) -> None:
        await self.domain.deliver(EndTakeoverRequested(self.slack.rooms[-1], "U01"))

    def agent(self, action: str, *args: str) -> None:
        actions: dict[str, Callable[..., Awaitable[None]]] = {
            "accept": self.accept,
            "say": self.say,
            "end": self.end,
            "wait_relayed": self.slack.wait_relayed,
        }
        trio.from_thread.run(actions[action], *args)


@asynccontextmanager
async def running_site(*, ws_idle_close_s: float = 120.0) -> AsyncIterator[Site]:
    ARTIFACTS.mkdir(exist_ok=True)
    slack = ScriptedSlack()
    bot_settings = BotSettings()
    routing = RoutingSettings(agents=("U01",), offer_timeout_s=40.0, max_tries=3)
    domain = Domain(
        routing=routing,
        bot_settings=bot_settings,
        bot=KnowledgeBot(
            load_knowledge_base(ROOT / "knowledge_base.yaml"), bot_settings.handoff_phrases
        ),
        slack=slack.send,
        sink=MemoryFactSink(),
        agents=("U01",),
        greeting=bot_settings.greeting,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(slack.run)
        await nursery.start(domain.run)
        await domain.deliver(PresenceChanged("U01", True))
        server = ChatServer(
            domain,
            HttpSettings(host="127.0.0.1", port=0),
            widget=WidgetConfig(offer_timeout_s=40.0, max_tries=3),
            ws_idle_close_s=ws_idle_close_s,
        )
        yield Site(domain, slack, await nursery.start(server.run))
        server.shutdown()
        nursery.cancel_scope.cancel()


@contextmanager
def chromium() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu"],
        )
        try:
            yield browser
        finally:
            browser.close()


def say(page: Page, text: str) -> None:
    page.locator("#text").fill(text)
    page.locator("#text").press("Enter")


def drive_takeover(site: Site) -> dict[str, Any]:
    """The customer's side of a takeover, in Chromium (runs in a worker thread)."""
    from playwright.sync_api import expect

    seen: dict[str, Any] = {"dialogs": []}
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 520, "height": 820})
        page.set_default_timeout(WAIT_MS)
        page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
        page.goto(site.base_url + "/")
        expect(page.locator("#conn")).to_have_attribute("data-state", "online")
        log = page.locator("#log")

        say(page, "How long does shipping take?")
        expect(log.locator(".msg-bot").last).to_contain_text("business days")

        say(page, "I want to talk to a human")
        expect(page.locator("#searching")).to_be_visible()
        expect(page.locator("#searching-sub")).to_contain_text("up to 2 minutes")
        page.screenshot(path=str(ARTIFACTS / "widget-searching.png"))

        site.agent("accept")
        card = log.locator(".agent-card")
        expect(card).to_contain_text("Alice joined the chat")
        expect(card).to_contain_text("Alice Moreau · Support lead")
        expect(page.locator("#chat-title")).to_have_text("Alice")

        # The server closes an idle socket (1 s here): the widget reconnects from its last seq.
        with page.expect_websocket():
            pass
        site.agent("say", f"Hi, I'm Alice. {XSS}")
        expect(log.locator(".msg-agent .msg-text").last).to_have_text(f"Hi, I'm Alice. {XSS}")
        say(page, XSS)
        expect(log.locator(".msg-customer .msg-text").last).to_have_text(XSS)
        site.agent("wait_relayed", XSS)  # reaches the agent's room exactly as typed
        page.screenshot(path=str(ARTIFACTS / "widget-agent.png"))

        site.agent("end")
        expect(log.locator(".sys-text").last).to_contain_text("left the chat")
        expect(page.locator("#chat-title")).to_have_text("Support")
        seen["agent_bubbles"] = log.locator(".msg-agent").count()
        seen["customer_bubbles"] = log.locator(".msg-customer").count()

        page.reload()  # the same session resumes from sessionStorage, nothing twice
        expect(log.locator(".msg-agent")).to_have_count(1)
        seen["customer_bubbles_after_reload"] = log.locator(".msg-customer").count()
        seen["images_in_texts"] = log.locator(".msg-text img").count()
        page.screenshot(path=str(ARTIFACTS / "widget-browser.png"))
    return seen


@pytest.mark.browser
async def test_widget_bot_agent_join_talk_leave_in_chromium() -> None:
    with trio.fail_after(60):
        async with running_site(ws_idle_close_s=1.0) as site:
            seen = await trio.to_thread.run_sync(drive_takeover, site)
    assert seen["dialogs"] == []  # no script ran from any text
    assert seen["images_in_texts"] == 0
    assert seen["agent_bubbles"] == 1
    assert seen["customer_bubbles"] == seen["customer_bubbles_after_reload"] == 3
    assert site.offers[0].customer_name.startswith("Customer")
    assert (ARTIFACTS / "widget-browser.png").stat().st_size > 0


def drive_long_poll_and_return(site: Site) -> dict[str, Any]:
    """WebSockets blocked: the widget long-polls. Then the customer comes back for a new chat."""
    from playwright.sync_api import expect

    seen: dict[str, Any] = {}
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 520, "height": 820})
        context.add_init_script(
            "window.WebSocket = function () { throw new Error('blocked by the network'); };"
        )
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        polls: list[str] = []
        page.on("request", lambda r: polls.append(r.url) if "/events?" in r.url else None)
        page.goto(site.base_url + "/")
        expect(page.locator("#conn")).to_have_attribute("data-state", "online")
        log = page.locator("#log")
        say(page, "How much does shipping cost?")
        expect(log.locator(".msg-bot")).to_have_count(2)  # the greeting and the answer
        say(page, "Can I talk to a human?")
        site.agent("accept")
        expect(log.locator(".agent-card")).to_contain_text("Alice joined the chat")
        site.agent("say", "Hello from Alice")
        expect(log.locator(".msg-agent .msg-text")).to_have_text("Hello from Alice")
        seen["polls"] = len(polls)

        page.locator("#end-chat").click()
        expect(page.locator("#closed-box")).to_be_visible()
        expect(page.locator("#text")).to_be_disabled()

        # A returning customer: a new tab of the same browser keeps the customer_id.
        again = context.new_page()
        again.set_default_timeout(WAIT_MS)
        again.goto(site.base_url + "/")
        earlier = again.locator(".msg-history .msg-text")
        expect(earlier.last).to_have_text("Hello from Alice")
        expect(again.locator(".divider").first).to_have_text("Earlier conversation")
        seen["history_texts"] = earlier.all_inner_texts()
        page.screenshot(path=str(ARTIFACTS / "widget-long-poll.png"))
        again.screenshot(path=str(ARTIFACTS / "widget-returning.png"))
    return seen


@pytest.mark.browser
async def test_widget_long_polls_without_websockets_and_remembers_the_customer() -> None:
    with trio.fail_after(60):
        async with running_site() as site:
            seen = await trio.to_thread.run_sync(drive_long_poll_and_return, site)
    assert seen["polls"] >= 2
    greeting = BotSettings().greeting
    assert seen["history_texts"][:2] == [greeting, "How much does shipping cost?"]
    assert "Can I talk to a human?" in seen["history_texts"]
