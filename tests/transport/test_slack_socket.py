"""SocketModeClient against an in-test Socket Mode server: hello, ack first, de-duplication."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

from tests.transport.slack_fake_ws import FakeSlackSockets, Peer, fake_slack_sockets
from transport.slack_backoff import Backoff
from transport.slack_errors import SlackFatalDisconnect
from transport.slack_rate import RateLimits
from transport.slack_socket import InboundEnvelope, SocketModeClient
from transport.slack_web import SlackWebClient
from transport.slack_ws import WsPolicy

POLICY = WsPolicy(
    connect_timeout_s=5.0,
    ping_interval_s=10.0,
    ping_timeout_s=5.0,
    close_timeout_s=2.0,
    backoff=Backoff(1.0, 2.0, 60.0, 0.0),
)


class Recorder:
    """The injected handler: records what it was handed and when."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, InboundEnvelope]] = []
        self.arrived = trio.Event()

    async def __call__(self, envelope: InboundEnvelope) -> None:
        self.seen.append((trio.current_time(), envelope))
        self.arrived.set()
        self.arrived = trio.Event()

    async def wait_for(self, count: int) -> None:
        while len(self.seen) < count:
            await self.arrived.wait()

    @property
    def ids(self) -> list[str]:
        return [envelope.envelope_id for _, envelope in self.seen]


def make_client(fake: FakeSlackSockets, handler: Any, **options: Any) -> SocketModeClient:
    web = SlackWebClient(
        "xapp-1", api_url="http://slack.test/api/", transport=fake.web, rate_limits=RateLimits.off()
    )
    return SocketModeClient(web, handler, policy=POLICY, **options)


@asynccontextmanager
async def running(
    handler: Any, **fake_options: Any
) -> AsyncIterator[tuple[FakeSlackSockets, SocketModeClient, Peer]]:
    async with fake_slack_sockets(**fake_options) as fake, trio.open_nursery() as nursery:
        client = make_client(fake, handler)
        await nursery.start(client.run)
        peer = await fake.next_peer(1)
        yield fake, client, peer
        nursery.cancel_scope.cancel()


async def test_run_is_started_only_after_hello(autojump_clock: object) -> None:
    with trio.fail_after(30):
        async with fake_slack_sockets(hello_delay=3.0) as fake, trio.open_nursery() as nursery:
            await nursery.start(make_client(fake, Recorder()).run)
            assert trio.current_time() == 3.0
            assert [method for _, method, _ in fake.url_requests] == ["apps.connections.open"]
            nursery.cancel_scope.cancel()


async def test_each_envelope_is_acked_before_the_handler_sees_it(autojump_clock: object) -> None:
    recorder = Recorder()
    peers: list[Peer] = []

    async def handler(envelope: InboundEnvelope) -> None:
        with trio.fail_after(1):  # would never finish if the ack came after the work
            while envelope.envelope_id not in peers[0].acks():
                await peers[0].wait_for(len(peers[0].received) + 1)
        await recorder(envelope)

    with trio.fail_after(30):
        async with running(handler) as (_, client, peer):
            peers.append(peer)
            await peer.envelope("E1", {"event_id": "Ev1", "event": {"type": "message"}})
            await peer.envelope(
                "E2", {"type": "block_actions"}, kind="interactive", retry_attempt=0
            )
            await peer.envelope("E3", {"command": "/end-takeover"}, kind="slash_commands")
            await peer.wait_for(3)
            await recorder.wait_for(3)
            stats = client.statistics()
    assert peer.acks() == ["E1", "E2", "E3"] and recorder.ids == ["E1", "E2", "E3"]
    assert stats.envelopes == 3 and stats.acked == 3 and stats.delivered == 3


async def test_a_slow_handler_never_delays_the_acks(autojump_clock: object) -> None:
    release = trio.Event()
    recorder = Recorder()

    async def slow(envelope: InboundEnvelope) -> None:
        if envelope.envelope_id == "E1":
            await release.wait()
        await recorder(envelope)

    with trio.fail_after(60):
        async with running(slow) as (_, _client, peer):
            await peer.envelope("E1", {"event_id": "Ev1"})
            await peer.envelope("E2", {"event_id": "Ev2"})
            await peer.wait_for(2)
            assert [at for at, _ in peer.received] == [0.0, 0.0]
            await trio.sleep(30)
            release.set()
            await recorder.wait_for(2)
    assert [(at, e.envelope_id) for at, e in recorder.seen] == [(30.0, "E1"), (30.0, "E2")]


async def test_envelopes_are_typed_with_retry_details(autojump_clock: object) -> None:
    recorder = Recorder()
    with trio.fail_after(30):
        async with running(recorder) as (_, _client, peer):
            await peer.envelope(
                "E7",
                {"event_id": "Ev7"},
                retry_attempt=2,
                retry_reason="timeout",
                accepts_response_payload=True,
            )
            await recorder.wait_for(1)
    assert recorder.seen[0][1] == InboundEnvelope(
        kind="events_api",
        payload={"event_id": "Ev7"},
        envelope_id="E7",
        retry_attempt=2,
        retry_reason="timeout",
        accepts_response_payload=True,
    )


async def test_redeliveries_are_acked_again_but_handled_once(autojump_clock: object) -> None:
    recorder = Recorder()
    with trio.fail_after(30):
        async with running(recorder) as (_, client, peer):
            await peer.envelope("E1", {"event_id": "Ev1"})
            await peer.envelope("E1", {"event_id": "Ev1"}, retry_attempt=1)  # same envelope
            await peer.envelope("E2", {"event_id": "Ev1"}, retry_attempt=2)  # same event
            await peer.envelope("E3", {"type": "block_actions"}, kind="interactive")
            await peer.envelope("E4", {"type": "block_actions"}, kind="interactive")
            await peer.wait_for(5)
            await recorder.wait_for(3)
            await trio.testing.wait_all_tasks_blocked()
            stats = client.statistics()
    assert peer.acks() == ["E1", "E1", "E2", "E3", "E4"]
    assert recorder.ids == ["E1", "E3", "E4"]
    assert stats.duplicates == 2 and stats.delivered == 3


async def test_bad_messages_are_dropped_and_unusable_envelopes_still_acked(
    autojump_clock: object,
) -> None:
    recorder = Recorder()
    with trio.fail_after(30):
        async with running(recorder) as (_, client, peer):
            await peer.send_raw("not json")
            await peer.send_raw("[1, 2]")
            await peer.send({"no": "type"})
            await peer.send({"type": "something_new"})
            await peer.envelope("E1", {"x": 1}, kind="future_kind")
            await peer.send({"type": "events_api", "envelope_id": "E2", "payload": "not a dict"})
            await peer.envelope("E3", {"event_id": "Ev3"})
            await recorder.wait_for(1)
            stats = client.statistics()
    assert peer.acks() == ["E1", "E2", "E3"]
    assert recorder.ids == ["E3"]
    assert stats.links.bad_messages == 3 and stats.delivered == 1


async def test_a_handler_that_raises_is_logged_and_delivery_goes_on(autojump_clock: object) -> None:
    recorder = Recorder()

    async def flaky(envelope: InboundEnvelope) -> None:
        if envelope.envelope_id == "E1":
            raise RuntimeError("handler bug")
        await recorder(envelope)

    with trio.fail_after(30):
        async with running(flaky) as (_, client, peer):
            await peer.envelope("E1", {"event_id": "Ev1"})
            await peer.envelope("E2", {"event_id": "Ev2"})
            await recorder.wait_for(1)
            stats = client.statistics()
    assert recorder.ids == ["E2"]
    assert stats.handler_errors == 1 and stats.delivered == 1


async def test_a_full_queue_pauses_before_the_ack_and_loses_nothing(autojump_clock: object) -> None:
    release = trio.Event()
    recorder = Recorder()

    async def blocking(envelope: InboundEnvelope) -> None:
        await release.wait()
        await recorder(envelope)

    with trio.fail_after(30):
        async with fake_slack_sockets() as fake, trio.open_nursery() as nursery:
            client = make_client(fake, blocking, max_pending=1)
            await nursery.start(client.run)
            peer = await fake.next_peer(1)
            await peer.envelope("E1", {"event_id": "Ev1"})
            await peer.envelope("E2", {"event_id": "Ev2"})
            await peer.wait_for(1)
            await trio.testing.wait_all_tasks_blocked()
            assert peer.acks() == ["E1"]  # E2 waits, unacked, for room in the queue
            release.set()
            await recorder.wait_for(2)
            assert peer.acks() == ["E1", "E2"]
            nursery.cancel_scope.cancel()
    assert recorder.ids == ["E1", "E2"]


async def test_run_fails_fast_when_the_app_token_is_refused(autojump_clock: object) -> None:
    with trio.fail_after(30):
        async with fake_slack_sockets() as fake:
            fake.url_errors.append("invalid_auth")
            with pytest.raises(SlackFatalDisconnect) as caught:
                await make_client(fake, Recorder()).run()
    assert caught.value.reason == "invalid_auth"
    assert trio.current_time() == 0.0 and fake.peers == []
