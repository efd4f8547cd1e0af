"""A simulated customer's incoming events, over the WebSocket or by long-polling.

Owns `Inbox`: `run()` keeps receiving the session's events (WebSocket: reconnecting with
`after=<last seq>` when the server closes an idle socket or the connection drops; poll: `GET
/events?after=&wait=` in a loop) until the `closed` event; `wait_for(types, after)` returns the
first event of those types after a seq. Every event is handed to `on_event` as it arrives, which is
where delivery latencies are measured.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any

import trio

from loadtest.http import JsonHttp
from loadtest.wsclient import WsClosed, open_ws

__all__ = ["Inbox"]

Event = dict[str, Any]
POLL_WAIT_S = 25


class Inbox:
    def __init__(
        self,
        *,
        http: JsonHttp,
        base_url: str,
        session_id: str,
        token: str,
        transport: str,
        on_event: Callable[[Event], None],
        on_error: Callable[[str], None],
    ) -> None:
        self.events: list[Event] = []
        self.closed = False
        # seq of the latest `agent_left` or `closed`: "did the takeover end" without a scan
        self.last_end_seq = 0
        self._http = http
        self._ws_base = "ws" + base_url.removeprefix("http")
        self._session_id = session_id
        self._token = token
        self._transport = transport
        self._on_event = on_event
        self._on_error = on_error
        self._changed = trio.Event()
        self._done = trio.Event()

    async def wait_done(self) -> None:
        """Until `run` has returned (after `closed`, once the server closed the socket)."""
        await self._done.wait()

    @property
    def last_seq(self) -> int:
        return self.events[-1]["seq"] if self.events else 0

    def _take(self, event: Any) -> None:
        if not isinstance(event, dict) or not isinstance(event.get("seq"), int):
            self._on_error("customer_bad_event")
            return
        if event["seq"] <= self.last_seq:
            self._on_error("customer_event_repeated")
            return
        self.events.append(event)
        self._on_event(event)
        kind = event.get("type")
        if kind in ("agent_left", "closed"):
            self.last_end_seq = event["seq"]
        if kind == "closed":
            self.closed = True
        self._changed.set()
        self._changed = trio.Event()

    async def wait_until(self, match: Callable[[Event], bool], after: int = 0) -> Event:
        """The first event with a seq above `after` that `match`es, waiting for it; raises
        `trio.EndOfChannel` if the session closes first (unless `match` takes `closed`)."""
        checked = 0
        while True:
            for event in self.events[checked:]:
                if event["seq"] > after and match(event):
                    return event
            checked = len(self.events)
            if self.closed:
                raise trio.EndOfChannel("the session closed")
            await self._changed.wait()

    async def wait_for(self, types: Collection[str], after: int = 0) -> Event:
        """The first event of one of `types` with a seq above `after`."""
        return await self.wait_until(lambda e: e.get("type") in types, after)

    async def run(self) -> None:
        try:
            while not self.closed:
                try:
                    if self._transport == "websocket":
                        await self._websocket()
                    else:
                        await self._poll()
                except Exception as e:  # any failure: count it, reconnect
                    self._on_error(f"customer_events_{type(e).__name__}")
                    await trio.sleep(0.5)
        finally:
            self._done.set()

    async def _websocket(self) -> None:
        url = (
            f"{self._ws_base}/api/sessions/{self._session_id}/ws"
            f"?token={self._token}&after={self.last_seq}"
        )
        async with open_ws(url) as ws:
            while True:
                # After `closed` the server closes the socket: wait for it rather than close
                # from this side at the same moment (that race crashes Hypercorn's connection).
                try:
                    frame = await ws.get_message()
                except WsClosed:
                    return  # closed, idle or shutting down: reconnect from the last seq if open
                try:
                    self._take(json.loads(frame))
                except ValueError:
                    self._on_error("customer_bad_frame")

    async def _poll(self) -> None:
        path = f"/api/sessions/{self._session_id}/events"
        while not self.closed:
            reply = await self._http.call(
                "GET",
                path,
                token=self._token,
                query={"after": self.last_seq, "wait": POLL_WAIT_S},
            )
            if reply.status != 200:
                self._on_error(f"customer_poll_{reply.status}")
                await trio.sleep(1)
                continue
            for event in reply.body.get("events", []):
                self._take(event)
