"""One load-test run, start to finish: processes, agents, customers, drain, audit, results.

Owns `run_load`: start the emulator and the daemon (or attach to running ones), connect the
simulated agents, let customers arrive (Poisson, at most `customers.concurrent` at once) for
`duration_s`, give the conversations in flight up to `drain_s` to finish, then audit what Slack
and the customer API hold (`ledger.audit`) and return the `RunResult` the report is made from.
"""

from __future__ import annotations

import os
import random
import secrets
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from loadtest.agent import AgentUser, SimAgent
from loadtest.context import RunContext
from loadtest.customer import simulate_customer
from loadtest.http import HttpFailure, JsonHttp
from loadtest.ledger import Audit, audit
from loadtest.monitor import ProcessMonitor
from loadtest.processes import AGENT_PREFIX, Stack, StackDied, start_stack
from loadtest.profile import Profile
from loadtest.recorder import Recorder

__all__ = ["Attach", "RunResult", "run_load"]

AGENTS_CONNECT_S = 60.0
AUDIT_PARALLEL = 32


@dataclass(frozen=True, slots=True)
class Attach:
    """Run against a daemon and an emulator that are already running."""

    chat_url: str
    emulator_url: str
    daemon_pid: int | None = None


@dataclass(slots=True)
class RunResult:
    profile: Profile
    recorder: Recorder
    audit: Audit
    monitor: ProcessMonitor
    elapsed_s: float
    load_s: float
    escalated: int
    without_outcome: list[str]
    unaudited: list[str]
    daemon_stats: dict[str, Any]
    workdir: Path


@asynccontextmanager
async def _stack(
    profile: Profile, settings_path: str, attach: Attach | None, workdir: Path
) -> AsyncIterator[Stack]:
    if attach is not None:
        yield Stack(attach.chat_url, attach.emulator_url, attach.daemon_pid, None, workdir)
        return
    async with start_stack(settings_path, profile, workdir) as stack:
        yield stack


async def _agent_users(ctx: RunContext, attach: bool) -> list[AgentUser]:
    users = (await ctx.emulator.call("GET", "/_emu/users")).body.get("users", [])
    pool = {a["id"] for a in (await ctx.chat.call("GET", "/api/stats")).body.get("agents", [])}
    chosen = [
        AgentUser(u["id"], u["name"], u["token"])
        for u in users
        if u.get("id") in pool and (attach or str(u.get("name", "")).startswith(AGENT_PREFIX))
    ]
    return chosen[: ctx.profile.agents.count]


async def _watch(stack: Stack) -> None:
    """End the run with the reason when the daemon or the emulator dies under the load."""

    async def watch(process: trio.Process) -> None:
        await process.wait()
        raise StackDied(stack.failure() or "a process under test exited")

    async with trio.open_nursery() as nursery:
        for _, process, _ in stack.processes:
            nursery.start_soon(watch, process)


async def _arrivals(ctx: RunContext, nursery: trio.Nursery) -> None:
    p = ctx.profile.customers
    room = trio.Semaphore(p.concurrent)
    next_at = trio.current_time()
    number = 0

    async def customer(n: int) -> None:
        ctx.active_customers += 1
        try:
            await simulate_customer(ctx, n)
        finally:
            ctx.active_customers -= 1
            room.release()

    while p.total == 0 or number < p.total:
        next_at += ctx.rng.expovariate(p.arrival_rate)
        await trio.sleep_until(next_at)
        await room.acquire()
        number += 1
        nursery.start_soon(customer, number)


async def _session_events(ctx: RunContext, session_id: str, token: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        after = events[-1]["seq"] if events else 0
        reply = await ctx.chat.call(
            "GET", f"/api/sessions/{session_id}/events", token=token, query={"after": after}
        )
        if reply.status != 200:
            raise HttpFailure(f"events of {session_id}: {reply.status}", str(reply.status))
        batch = reply.body.get("events", [])
        if not batch:
            return events
        events += batch


async def _audit(ctx: RunContext) -> tuple[Audit, list[str]]:
    events: dict[str, list[dict[str, Any]]] = {}
    rooms: dict[str, list[str]] = {}
    unaudited: list[str] = []
    limit = trio.CapacityLimiter(AUDIT_PARALLEL)

    async def fetch_events(session_id: str, token: str) -> None:
        async with limit:
            try:
                events[session_id] = await _session_events(ctx, session_id, token)
            except HttpFailure:
                unaudited.append(session_id)

    async def fetch_room(room: str) -> None:
        async with limit:
            reply = await ctx.emulator.call("GET", "/_emu/messages", query={"channel": room})
            rooms[room] = [str(m.get("text") or "") for m in reply.body.get("messages", [])]

    async with trio.open_nursery() as nursery:
        for conv in ctx.conversations.values():
            if conv.session_id:
                nursery.start_soon(fetch_events, conv.session_id, conv.token)
            for room in conv.rooms:
                nursery.start_soon(fetch_room, room)
    audited = [c for c in ctx.conversations.values() if c.session_id not in unaudited]
    return audit(audited, events, rooms), unaudited


async def run_load(
    profile: Profile,
    settings_path: str,
    *,
    attach: Attach | None = None,
    progress: Callable[[RunContext, ProcessMonitor], Awaitable[None]] | None = None,
) -> RunResult:
    workdir = Path(tempfile.mkdtemp(prefix="takeover-loadtest-"))
    begun = trio.current_time()
    async with _stack(profile, settings_path, attach, workdir) as stack:
        chat = JsonHttp(stack.chat_url, connections=max(64, profile.customers.concurrent + 16))
        emulator = JsonHttp(stack.emulator_url, connections=max(64, profile.agents.count + 16))
        ctx = RunContext(
            profile=profile,
            recorder=Recorder(interval_s=profile.report.interval_s),
            chat=chat,
            emulator=emulator,
            chat_url=stack.chat_url,
            emulator_url=stack.emulator_url,
            run_id=secrets.token_hex(3),
            rng=random.Random(profile.seed),
        )
        watched = {"loadtest": os.getpid()}
        if stack.daemon_pid is not None:
            watched["daemon"] = stack.daemon_pid
        if stack.emulator_pid is not None:
            watched["emulator"] = stack.emulator_pid
        monitor = ProcessMonitor(watched, ctx.now, profile.report.interval_s)
        try:
            async with trio.open_nursery() as background:
                background.start_soon(_watch, stack)
                if progress is not None:
                    background.start_soon(progress, ctx, monitor)
                users = await _agent_users(ctx, attach is not None)
                agents = [SimAgent(ctx, user, background) for user in users]
                for agent in agents:
                    background.start_soon(agent.run)
                with trio.fail_after(AGENTS_CONNECT_S):
                    for agent in agents:
                        await agent.connected.wait()
                ctx.started_at = trio.current_time()
                background.start_soon(monitor.run)
                monitor.mark_start()
                ctx.phase = "running"
                async with trio.open_nursery() as customers:
                    customers.cancel_scope.deadline = (
                        trio.current_time() + profile.duration_s + profile.drain_s
                    )
                    with trio.move_on_after(profile.duration_s):
                        await _arrivals(ctx, customers)
                    ctx.phase = "draining"
                load_s = ctx.now()
                if customers.cancel_scope.cancelled_caught:
                    # Customers were cut off: let what they sent last land before the audit.
                    ctx.phase = "settling"
                    await trio.sleep(profile.settle_s)
                pending = sum(agent.pending_offers for agent in agents)
                if pending:
                    ctx.recorder.error("offer_without_outcome", load_s, pending)
                monitor.mark_end()
                monitor.sample()
                ctx.phase = "auditing"
                checked, unaudited = await _audit(ctx)
                stats = (await chat.call("GET", "/api/stats")).body
                background.cancel_scope.cancel()
        finally:
            await chat.aclose()
            await emulator.aclose()
    escalated = [c for c in ctx.conversations.values() if c.escalated_at is not None]
    return RunResult(
        profile=profile,
        recorder=ctx.recorder,
        audit=checked,
        monitor=monitor,
        elapsed_s=trio.current_time() - begun,
        load_s=load_s,
        escalated=len(escalated),
        without_outcome=[c.customer_id for c in escalated if c.outcome is None],
        unaudited=unaudited,
        daemon_stats=stats,
        workdir=workdir,
    )
