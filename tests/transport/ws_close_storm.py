"""A separate process of customers that close their chat while its WebSocket closes.

`python -m tests.transport.ws_close_storm BASE_URL ROUNDS PER_ROUND`: each customer opens a
session, connects the WebSocket, POSTs /close, reads until the `closed` event and leaves at once
(as the widget does). Run in its own process so that the client's close frames race the server's
closing for real; prints one line per round: `<round> <sessions closed> <healthz status>`.
"""

from __future__ import annotations

import json
import sys

import httpx
import trio
from trio_websocket import ConnectionClosed, open_websocket_url


async def _customer(client: httpx.AsyncClient, ws_base: str, closed: list[str]) -> None:
    session = (await client.post("/api/sessions", json={})).json()
    sid, token = session["session_id"], session["token"]
    async with open_websocket_url(f"{ws_base}/api/sessions/{sid}/ws?token={token}") as ws:
        await client.post(
            f"/api/sessions/{sid}/close", headers={"Authorization": f"Bearer {token}"}
        )
        try:
            while json.loads(await ws.get_message())["type"] != "closed":
                pass
        except ConnectionClosed:
            return
        closed.append(sid)


async def main(base: str, rounds: int, per_round: int) -> None:
    ws_base = base.replace("http://", "ws://", 1)
    limits = httpx.Limits(max_connections=per_round * 2, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        for round_no in range(rounds):
            closed: list[str] = []
            async with trio.open_nursery() as nursery:
                for _ in range(per_round):
                    nursery.start_soon(_customer, client, ws_base, closed)
            health = await client.get("/healthz")
            print(round_no, len(closed), health.status_code, flush=True)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
