"""Slack Web API client cost: calls per second and CPU per call at 50 concurrent callers.

    python benchmarks/slack_web_calls.py [--seconds 5] [--rounds 3] [--callers 50]

Starts a tiny keep-alive HTTP server in its own process (it answers every call with a fixed
chat.postMessage answer), then runs each client variant in a fresh process of its own, one after
the other, for `--seconds`, `--rounds` times, and prints the median of each with its ratio to
`slack_sdk.WebClient` driven by 50 threads (the baseline, measured in the same run):

- ``takeover``        SlackWebClient as shipped: TrioHttpTransport, Slack's rate tiers in the
                      path (chat.postMessage's tier raised so it does not throttle), retries,
                      post ids in metadata; 50 trio tasks.
- ``takeover+httpcore`` the same client over httpx's stock `AsyncHTTPTransport` (httpcore pool).
- ``httpx.AsyncClient`` plain `httpx.AsyncClient.post` under trio, no tiers or retries.
- ``slack_sdk``       `slack_sdk.WebClient.chat_postMessage` from 50 threads.

CPU is the client process's user+system time over the timed window (all its threads), so the
server's work is not counted; "server cpu" is the server process's share of a core meanwhile. `--url` points every variant at another server instead (for
example the emulator's ``http://127.0.0.1:PORT/api/`` with `--token`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ANSWER = b'{"ok":true,"channel":"C1","ts":"1700000000.000100","message":{"type":"message","text":"hello"}}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
    b"Content-Length: %d\r\n\r\n" % len(ANSWER)
) + ANSWER
VARIANTS = ("takeover", "takeover+httpcore", "httpx.AsyncClient", "slack_sdk")
BASELINE = "slack_sdk"


# --- the tiny server (its own process) -------------------------------------------------------


class _Http(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(RESPONSE)
            if b"connection: close" in head:
                self.transport.close()
                return


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Http, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


# --- one variant (its own process) ----------------------------------------------------------


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _run_sdk(
    url: str, token: str, callers: int, seconds: float, channel: str = ""
) -> tuple[int, float, float]:
    from slack_sdk import WebClient

    client = WebClient(token=token, base_url=url)
    counts = [0] * callers
    start_line = threading.Barrier(callers + 1)
    deadline = [0.0]

    def caller(i: int) -> None:
        start_line.wait()
        while time.perf_counter() < deadline[0]:
            client.chat_postMessage(channel=channel or f"C{i}", text="hello")
            counts[i] += 1

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    cpu0, t0 = _cpu(), time.perf_counter()
    deadline[0] = t0 + seconds
    start_line.wait()
    for thread in threads:
        thread.join()
    return sum(counts), time.perf_counter() - t0, _cpu() - cpu0


def _run_trio(
    variant: str, url: str, token: str, callers: int, seconds: float, channel: str = ""
) -> tuple[int, float, float]:
    import httpx
    import trio

    from transport.slack_rate import RateLimits, Tier
    from transport.slack_web import SlackWebClient

    async def main() -> tuple[int, float, float]:
        counts = [0] * callers
        if variant == "httpx.AsyncClient":
            limits = httpx.Limits(max_connections=callers, max_keepalive_connections=callers)
            plain = httpx.AsyncClient(
                base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits
            )

            async def call(i: int) -> None:
                response = await plain.post(
                    "chat.postMessage", json={"channel": channel or f"C{i}", "text": "hello"}
                )
                response.json()

            closer = plain.aclose
        else:
            tiers = RateLimits.slack().with_tiers(
                {"chat.postMessage": Tier(1e9, burst=1_000_000, per_channel=True)}
            )
            transport = None
            if variant == "takeover+httpcore":
                transport = httpx.AsyncHTTPTransport(
                    limits=httpx.Limits(max_connections=callers, max_keepalive_connections=callers)
                )
            web = SlackWebClient(token, api_url=url, transport=transport, rate_limits=tiers)

            async def call(i: int) -> None:
                await web.call("chat.postMessage", channel=channel or f"C{i}", text="hello")

            closer = web.aclose

        for i in range(callers):  # warm the pool: one connection per caller
            await call(i)

        async def caller(i: int, deadline: float) -> None:
            while time.perf_counter() < deadline:
                await call(i)
                counts[i] += 1

        cpu0, t0 = _cpu(), time.perf_counter()
        async with trio.open_nursery() as nursery:
            for i in range(callers):
                nursery.start_soon(caller, i, t0 + seconds)
        elapsed, cpu = time.perf_counter() - t0, _cpu() - cpu0
        await closer()
        return sum(counts), elapsed, cpu

    return trio.run(main)


def _variant(args: argparse.Namespace) -> None:
    if args.variant == "slack_sdk":
        calls, elapsed, cpu = _run_sdk(
            args.url, args.token, args.callers, args.seconds, args.channel
        )
    else:
        calls, elapsed, cpu = _run_trio(
            args.variant, args.url, args.token, args.callers, args.seconds, args.channel
        )
    print(json.dumps({"calls": calls, "elapsed": elapsed, "cpu": cpu}))


# --- the driver -----------------------------------------------------------------------------


def _server_cpu(pid: int | None) -> float:
    """The server process's user+system seconds (Linux /proc), 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(
    variant: str, url: str, args: argparse.Namespace, server: int | None
) -> dict[str, float]:
    command = [
        sys.executable, __file__, "--variant", variant, "--url", url, "--token", args.token,
        "--callers", str(args.callers), "--seconds", str(args.seconds), "--channel", args.channel,
    ]  # fmt: skip
    server_cpu = _server_cpu(server)
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    server_cpu = _server_cpu(server) - server_cpu
    result = json.loads(out.strip().splitlines()[-1])
    return {
        "calls_per_s": result["calls"] / result["elapsed"],
        "cpu_us_per_call": result["cpu"] / result["calls"] * 1e6,
        "cpu_share": result["cpu"] / result["elapsed"],
        # Includes the run's warm-up and start-up, so slightly above the timed window's.
        "server_cpu_share": server_cpu / result["elapsed"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="timed window per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per variant (median kept)")
    parser.add_argument("--callers", type=int, default=50, help="concurrent callers")
    parser.add_argument("--url", default="", help="Web API base URL (default: a local server)")
    parser.add_argument("--token", default="xoxb-benchmark")
    parser.add_argument(
        "--channel", default="", help="post there (a real server's channel) instead of C<caller>"
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve())
        return
    if args.variant:
        _variant(args)
        return
    server = None
    url = args.url
    if not url:
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
        )
        assert server.stdout is not None
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}/api/"
    try:
        runs: dict[str, list[dict[str, float]]] = {v: [] for v in args.variants}
        for _ in range(args.rounds):  # interleaved, so drift hits every variant alike
            for variant in args.variants:
                pid = server.pid if server is not None else None
                runs[variant].append(_measure(variant, url, args, pid))
    finally:
        if server is not None:
            server.terminate()
            server.wait()
    figures = {v: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for v, rs in runs.items()}
    print(
        f"{args.callers} callers, {args.seconds:g} s x {args.rounds} rounds (median), cpus={os.cpu_count()}"
    )
    print(f"{'variant':<20}{'calls/s':>10}{'cpu us/call':>13}{'cpu share':>11}{'server cpu':>12}")
    for variant, f in figures.items():
        print(
            f"{variant:<20}{f['calls_per_s']:>10.0f}{f['cpu_us_per_call']:>13.0f}"
            f"{f['cpu_share']:>11.2f}{f['server_cpu_share']:>12.2f}"
        )
    if BASELINE in figures:
        base = figures[BASELINE]
        for variant, f in figures.items():
            if variant != BASELINE:
                print(
                    f"{variant}: {f['calls_per_s'] / base['calls_per_s']:.2f}x {BASELINE}'s calls/s, "
                    f"{f['cpu_us_per_call'] / base['cpu_us_per_call']:.2f}x its CPU per call"
                )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
