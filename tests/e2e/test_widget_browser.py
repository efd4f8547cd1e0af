"""The chat widget in headless Chromium: over the whole daemon with the bundled Slack emulator,
and over the chat server and the domain with a scripted Slack side.

The servers run in the test's trio loop; Playwright's sync API drives Chromium from a worker
thread (`trio.to_thread.run_sync`) and plays the agent by calling back into the loop
(`trio.from_thread.run`): through the emulator's API, or with the Slack facts an agent's clicks
and messages become. The bot is the knowledge-base bot with the shipped example knowledge base.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trio

import daemon
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
from actors.settings import BotSettings, HttpSettings, RoutingSettings, parse_settings
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


# --- the whole daemon, with the bundled Slack emulator playing the agent's side -----------------


class EmulatorAgent:
    """An agent acting through the emulator: clicks on the offer DM, posts in the room with their
    own user token, runs /end-takeover. Waits by long-polling the emulator's change feed."""

    def __init__(self, http: httpx.AsyncClient, emulator_url: str) -> None:
        self.http, self.emu = http, emulator_url
        self.version = 0
        self.user: dict[str, Any] = {}
        self.room = ""

    async def _get(self, path: str, **params: str) -> Any:
        response = await self.http.get(self.emu + path, params=params)
        response.raise_for_status()
        return response.json()

    async def _until(self, find: Callable[[], Awaitable[Any]]) -> Any:
        while (found := await find()) is None:
            changes = await self._get("/_emu/changes", since=str(self.version), wait="10")
            self.version = changes["version"]
        return found

    async def _offer(self) -> tuple[dict[str, Any], str, str] | None:
        users = {u["id"]: u for u in (await self._get("/_emu/users"))["users"]}
        for channel in (await self._get("/_emu/channels"))["channels"]:
            if not channel["is_im"]:
                continue
            for message in (await self._get("/_emu/messages", channel=channel["id"]))["messages"]:
                if "offer_accept" in str(message.get("blocks", "")):
                    human = next(m for m in channel["members"] if m in users)
                    return users[human], channel["id"], message["ts"]
        return None

    async def accept(self) -> None:
        self.user, channel, ts = await self._until(self._offer)
        answer = await self.http.post(
            self.emu + "/_emu/click",
            json={
                "user": self.user["id"],
                "channel": channel,
                "ts": ts,
                "action_id": "offer_accept",
            },
        )
        answer.raise_for_status()

        async def room() -> str | None:
            for c in (await self._get("/_emu/channels"))["channels"]:
                if c["name"].startswith("swivl_user_") and self.user["id"] in c["members"]:
                    return str(c["id"])
            return None

        self.room = await self._until(room)

    async def say(self, text: str) -> None:
        answer = await self.http.post(
            self.emu + "/api/chat.postMessage",
            headers={"Authorization": f"Bearer {self.user['token']}"},
            json={"channel": self.room, "text": text},
        )
        assert answer.json()["ok"], answer.text

    async def wait_in_room(self, text: str) -> None:
        async def posted() -> bool | None:
            messages = (await self._get("/_emu/messages", channel=self.room))["messages"]
            return True if any(text in m["text"] for m in messages) else None

        await self._until(posted)

    async def end(self) -> None:
        answer = await self.http.post(
            self.emu + "/_emu/command",
            json={"user": self.user["id"], "channel": self.room, "command": "/end-takeover"},
        )
        answer.raise_for_status()


def drive_with_emulator(chat_url: str, agent: Callable[..., Any]) -> dict[str, Any]:
    from playwright.sync_api import expect

    seen: dict[str, Any] = {"dialogs": []}
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 520, "height": 820})
        page.set_default_timeout(WAIT_MS)
        page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
        page.goto(chat_url + "/")
        expect(page.locator("#conn")).to_have_attribute("data-state", "online")
        log = page.locator("#log")
        say(page, "When will my order arrive?")
        expect(log.locator(".msg-bot").last).to_contain_text("business days")
        say(page, "I'd like to talk to a human")
        expect(page.locator("#searching")).to_be_visible()

        user = agent("accept")
        card = log.locator(".agent-card")
        expect(card).to_contain_text("joined the chat")
        expect(card).to_contain_text(user["real_name"])
        expect(card).to_contain_text(user["title"])
        expect(page.locator("#who-sub")).to_have_text(user["title"])

        # Typed in Slack, "<" and ">" reach the API as entities (Slack's client escapes them).
        agent("say", "Hello, &lt;img src=x onerror=alert(1)&gt; &amp; welcome")
        expect(log.locator(".msg-agent .msg-text").last).to_have_text(f"Hello, {XSS} & welcome")
        say(page, XSS)
        agent("wait_in_room", "&lt;img src=x onerror=alert(1)&gt;")  # escaped for Slack
        page.screenshot(path=str(ARTIFACTS / "widget-daemon-agent.png"))

        agent("end")
        expect(log.locator(".sys-text").last).to_contain_text("left the chat")
        seen["images_in_texts"] = log.locator(".msg-text img").count()
        page.screenshot(path=str(ARTIFACTS / "widget-daemon.png"))
    return seen


@pytest.mark.browser
async def test_widget_with_the_daemon_and_an_agent_in_the_emulator(tmp_path: Path) -> None:
    settings = parse_settings(
        {
            "http": {"port": 0},
            "emulator": {
                "port": 0,
                "agents": [{"name": "alice", "real_name": "Alice Moreau", "title": "Support lead"}],
            },
            "journal": {"path": str(tmp_path / "journal")},
            "log": {"level": "warning"},
        }
    )
    stop = trio.Event()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery, httpx.AsyncClient() as http:
            urls = await nursery.start(daemon.serve, settings, ROOT, stop)
            assert urls.emulator is not None
            emulator_agent = EmulatorAgent(http, urls.emulator)

            async def act(action: str, *args: str) -> Any:
                await getattr(emulator_agent, action)(*args)
                return emulator_agent.user

            def agent(action: str, *args: str) -> Any:  # called from the browser's thread
                return trio.from_thread.run(act, action, *args)

            seen = await trio.to_thread.run_sync(drive_with_emulator, urls.chat, agent)
            stop.set()  # the daemon drains and returns on its own
    assert seen["dialogs"] == []
    assert seen["images_in_texts"] == 0
