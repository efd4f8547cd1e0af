"""Fixtures for the emulator's tests.

Two ways to run an emulator:
- `emulator_thread` (sync tests): an `Emulator` served from a background thread running its own
  trio loop, so the official, synchronous slack_sdk clients can talk to it from the test thread.
- `running` (trio tests): the emulator in the test's own trio loop, for the autojump clock.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import trio
from slack_sdk import WebClient
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from emulator import AgentSeed, Emulator, EmulatorConfig

WAIT_S = 10  # hard cap on each wait for something from another thread
# The builtin SocketModeClient notices a socket closed by the server on its next ping check.
PING_INTERVAL_S = 0.5

AGENTS = (
    AgentSeed("alice", "Alice Moreau", "Support lead"),
    AgentSeed("bob", "Bob Okafor", "Support agent"),
)


@dataclass
class ThreadedEmulator:
    """An emulator running in its own thread; `stop()` cancels it and joins the thread."""

    emulator: Emulator
    base_url: str = ""
    _token: trio.lowlevel.TrioToken | None = None
    _scope: trio.CancelScope | None = None
    _thread: threading.Thread | None = None
    _error: list[BaseException] = field(default_factory=list)

    def start(self) -> ThreadedEmulator:
        started = threading.Event()

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                self._scope = nursery.cancel_scope
                self._token = trio.lowlevel.current_trio_token()
                self.base_url = await nursery.start(self.emulator.run)
                started.set()

        def thread_main() -> None:
            try:
                trio.run(main)
            except BaseException as e:  # reported by stop()
                self._error.append(e)
                started.set()

        self._thread = threading.Thread(target=thread_main, name="emulator", daemon=True)
        self._thread.start()
        assert started.wait(10), "emulator did not start"
        assert not self._error, self._error
        return self

    def stop(self) -> None:
        assert self._scope is not None and self._thread is not None
        trio.from_thread.run_sync(self._scope.cancel, trio_token=self._token)
        self._thread.join(10)
        assert not self._thread.is_alive(), "emulator thread did not stop"
        assert not self._error, self._error

    # conveniences for tests -----------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/"

    @property
    def bot(self) -> WebClient:
        return WebClient(token=self.emulator.credentials.bot_token, base_url=self.api_url)

    def user_client(self, name: str) -> WebClient:
        return WebClient(token=self.user(name)["token"], base_url=self.api_url)

    def user(self, name: str) -> dict[str, Any]:
        users = httpx.get(self.base_url + "/_emu/users", timeout=5).json()["users"]
        return next(u for u in users if u["name"] == name)

    def emu(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.base_url + path, timeout=5, **kwargs)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(agents=AGENTS)


@pytest.fixture
def emulator_thread(emulator_config: EmulatorConfig) -> Iterator[ThreadedEmulator]:
    running = ThreadedEmulator(Emulator(emulator_config)).start()
    yield running
    running.stop()


@dataclass
class InProcess:
    emulator: Emulator
    base_url: str
    http: httpx.AsyncClient

    async def api(self, method: str, token: str, **args: Any) -> httpx.Response:
        return await self.http.post(
            f"{self.base_url}/api/{method}", data=args, headers={"Authorization": f"Bearer {token}"}
        )

    async def emu(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, self.base_url + path, **kwargs)


@pytest.fixture
async def running(
    emulator_config: EmulatorConfig, nursery: trio.Nursery
) -> AsyncIterator[InProcess]:
    emulator = Emulator(emulator_config)
    base_url = await nursery.start(emulator.run)
    async with httpx.AsyncClient() as http:
        yield InProcess(emulator, base_url, http)


@contextmanager
def socket_app(
    emu: ThreadedEmulator, ack: Callable[[SocketModeRequest], bool] = lambda request: True
) -> Iterator[tuple[SocketModeClient, queue.Queue[SocketModeRequest]]]:
    """A SocketModeClient whose listener queues every request and acks those `ack` accepts."""
    received: queue.Queue[SocketModeRequest] = queue.Queue()
    client = SocketModeClient(
        app_token=emu.emulator.credentials.app_token,
        web_client=WebClient(base_url=emu.api_url),
        ping_interval=PING_INTERVAL_S,
    )

    def listener(sm: SocketModeClient, request: SocketModeRequest) -> None:
        if ack(request):
            sm.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        received.put(request)

    client.socket_mode_request_listeners.append(listener)
    client.connect()
    try:
        yield client, received
    finally:
        client.auto_reconnect_enabled = False
        emu.emu("POST", "/_emu/faults", json={"drop_sockets": "socket_mode"})
        client.close()


def next_request(received: queue.Queue[SocketModeRequest]) -> SocketModeRequest:
    return received.get(timeout=WAIT_S)
