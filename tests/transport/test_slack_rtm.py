"""RtmClient against an in-test RTM server: hello, presence_sub, typed events, reconnects."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from tests.transport.slack_fake_ws import FakeSlackSockets, fake_slack_sockets
from transport.slack_backoff import Backoff
from transport.slack_errors import SlackFatalDisconnect
from transport.slack_rate import RateLimits
from transport.slack_rtm import PresenceEvent, RtmClient, RtmConnected, RtmEvent, RtmMessage
from transport.slack_web import SlackWebClient
from transport.slack_ws import Link, WsPolicy

POLICY = WsPolicy(
    connect_timeout_s=5.0,
    ping_interval_s=10.0,
    ping_timeout_s=5.0,
    close_timeout_s=2.0,
    backoff=Backoff(1.0, 2.0, 60.0, 0.0),
)


class Events:
    def __init__(self) -> None:
        self.seen: list[RtmEvent] = []
        self.arrived = trio.Event()

    async def __call__(self, event: RtmEvent) -> None:
        self.seen.append(event)
        self.arrived.set()
        self.arrived = trio.Event()

    async def wait_for(self, count: int) -> None:
        while len(self.seen) < count:
            await self.arrived.wait()


def make_client(
    fake: FakeSlackSockets, handler: Any, ids: tuple[str, ...] = ("U1", "U2")
) -> RtmClient:
    web = SlackWebClient(
        "xoxb-1", api_url="http://slack.test/api/", transport=fake.web, rate_limits=RateLimits.off()
    )
    return RtmClient(web, handler, presence_ids=ids, policy=POLICY)


async def test_connect_subscribes_to_presence_before_counting_as_started(
    autojump_clock: object,
) -> None:
    events = Events()
    with trio.fail_after(30):
        async with fake_slack_sockets(hello_delay=2.0) as fake, trio.open_nursery() as nursery:
            await nursery.start(make_client(fake, events, ("U1", "U2", "U1")).run)
            started_at = trio.current_time()
            peer = await fake.next_peer(1)
            await peer.wait_for(1)
            await events.wait_for(1)
            nursery.cancel_scope.cancel()
    assert started_at == 2.0
    ((_, method, params),) = fake.url_requests
    assert method == "rtm.connect"
    assert params == {"batch_presence_aware": "true", "presence_sub": "true"}
    assert peer.received[0][1] == {"type": "presence_sub", "ids": ["U1", "U2"]}
    assert events.seen == [RtmConnected("UBOT", "T1", reconnected=False)]


async def test_presence_changes_single_and_batch_become_typed_events(
    autojump_clock: object,
) -> None:
    events = Events()
    with trio.fail_after(30):
        async with fake_slack_sockets() as fake, trio.open_nursery() as nursery:
            client = make_client(fake, events)
            await nursery.start(client.run)
            peer = await fake.next_peer(1)
            await peer.send({"type": "presence_change", "user": "U1", "presence": "away"})
            await peer.send(
                {"type": "presence_change", "users": ["U1", "U2"], "presence": "active"}
            )
            await peer.send({"type": "presence_change", "user": "U3", "presence": "asleep"})
            await peer.send({"type": "presence_change", "users": "U1", "presence": "away"})
            await events.wait_for(4)
            await trio.testing.wait_all_tasks_blocked()
            stats = client.statistics()
            nursery.cancel_scope.cancel()
    assert events.seen[1:] == [
        PresenceEvent("U1", "away"),
        PresenceEvent("U1", "active"),
        PresenceEvent("U2", "active"),
    ]
    assert stats.presence_events == 3 and stats.ignored == 2


async def test_messages_become_typed_records_and_noise_is_ignored(autojump_clock: object) -> None:
    events = Events()
    message = {
        "type": "message",
        "channel": "G1",
        "user": "U1",
        "text": "hello <@U2>",
        "ts": "1700000000.000100",
        "team": "T1",
    }
    with trio.fail_after(30):
        async with fake_slack_sockets() as fake, trio.open_nursery() as nursery:
            client = make_client(fake, events)
            await nursery.start(client.run)
            peer = await fake.next_peer(1)
            await peer.send({"type": "user_typing", "channel": "G1", "user": "U1"})
            await peer.send({"type": "message", "text": "no channel"})
            await peer.send_raw("{broken")
            await peer.send(message)
            await peer.send(
                {"type": "message", "subtype": "bot_message", "bot_id": "B1", "channel": "G1",
                 "ts": "1700000000.000200", "thread_ts": "1700000000.000100"}
            )  # fmt: skip
            await events.wait_for(3)
            stats = client.statistics()
            nursery.cancel_scope.cancel()
    assert events.seen[1:] == [
        RtmMessage("G1", "U1", "hello <@U2>", "1700000000.000100", None, None, None, message),
        RtmMessage(
            "G1",
            None,
            "",
            "1700000000.000200",
            "bot_message",
            "1700000000.000100",
            "B1",
            events.seen[2].payload,  # type: ignore[union-attr]
        ),
    ]
    assert stats.messages == 2 and stats.ignored == 2 and stats.links.bad_messages == 1


async def test_subscribe_presence_changes_the_ids_now_and_after_reconnects(
    autojump_clock: object,
) -> None:
    events = Events()
    with trio.fail_after(30):
        async with fake_slack_sockets() as fake, trio.open_nursery() as nursery:
            client = make_client(fake, events, ())
            await nursery.start(client.run)
            first = await fake.next_peer(1)
            await client.subscribe_presence(["U7", "U8"])
            await first.wait_for(1)
            await first.close(1001)
            second = await fake.next_peer(2)
            await second.wait_for(1)
            await events.wait_for(2)
            nursery.cancel_scope.cancel()
    assert [m for _, m in first.received] == [{"type": "presence_sub", "ids": ["U7", "U8"]}]
    assert [m for _, m in second.received] == [{"type": "presence_sub", "ids": ["U7", "U8"]}]
    assert events.seen == [
        RtmConnected("UBOT", "T1", reconnected=False),
        RtmConnected("UBOT", "T1", reconnected=True),
    ]


async def test_a_lost_socket_reconnects_with_backoff(autojump_clock: object) -> None:
    events = Events()
    with trio.fail_after(60):
        async with fake_slack_sockets() as fake, trio.open_nursery() as nursery:
            client = make_client(fake, events)
            await nursery.start(client.run)
            first = await fake.next_peer(1)
            await trio.sleep(5)
            fake.url_errors.extend(["fatal_error", "fatal_error", "fatal_error"])
            await first.close(1011)
            second = await fake.next_peer(2)
            await second.send({"type": "presence_change", "user": "U2", "presence": "away"})
            await events.wait_for(3)
            nursery.cancel_scope.cancel()
    assert [at for at, _, _ in fake.url_requests] == [0.0, 5.0, 6.0, 8.0, 12.0]
    assert events.seen[-1] == PresenceEvent("U2", "away")


async def test_goodbye_moves_to_a_new_link_and_overlapping_messages_arrive_once(
    autojump_clock: object,
) -> None:
    events = Events()
    message = {"type": "message", "channel": "D1", "user": "U1", "text": "hi", "ts": "1.000001"}
    with trio.fail_after(60):
        async with fake_slack_sockets() as fake, trio.open_nursery() as nursery:
            client = make_client(fake, events)
            await nursery.start(client.run)
            old = await fake.next_peer(1)
            await old.send({"type": "goodbye"})
            new = await fake.next_peer(2)
            await old.send(message)  # delivered on both links while they overlap
            await new.send(message)
            await new.send({**message, "ts": "1.000002", "text": "next"})
            await old.closed.wait()
            await events.wait_for(4)
            stats = client.statistics()
            nursery.cancel_scope.cancel()
    texts = [e.text for e in events.seen if isinstance(e, RtmMessage)]
    assert texts == ["hi", "next"]
    assert stats.duplicates == 1 and stats.links.refreshes == 1


async def test_a_refused_bot_token_is_fatal(autojump_clock: object) -> None:
    with trio.fail_after(30):
        async with fake_slack_sockets() as fake:
            fake.url_errors.append("not_allowed_token_type")
            with pytest.raises(SlackFatalDisconnect, match="not_allowed_token_type"):
                await make_client(fake, Events()).run()


async def test_a_handler_that_raises_does_not_stop_the_stream(autojump_clock: object) -> None:
    events = Events()

    async def flaky(event: RtmEvent) -> None:
        if isinstance(event, PresenceEvent) and event.user_id == "U1":
            raise RuntimeError("handler bug")
        await events(event)

    with trio.fail_after(30):
        async with fake_slack_sockets() as fake, trio.open_nursery() as nursery:
            client = make_client(fake, flaky)
            await nursery.start(client.run)
            peer = await fake.next_peer(1)
            await peer.send({"type": "presence_change", "users": ["U1", "U2"], "presence": "away"})
            await events.wait_for(2)
            assert client.statistics().handler_errors == 1
            nursery.cancel_scope.cancel()
    assert events.seen[-1] == PresenceEvent("U2", "away")


async def test_events_read_while_shutting_down_are_dropped_not_raised(
    autojump_clock: object,
) -> None:
    # A link's reader can hand on a message it already read after the dispatcher has ended
    # (shutdown): the hooks must drop it instead of raising BrokenResourceError.
    events = Events()
    with trio.fail_after(30):
        async with fake_slack_sockets() as fake, trio.open_nursery() as nursery:
            client = make_client(fake, events)
            await nursery.start(client.run)
            await events.wait_for(1)
            nursery.cancel_scope.cancel()
    late = Link(7)
    await client.on_hello(late, {"type": "hello"})
    await client.on_message(late, {"type": "presence_change", "user": "U1", "presence": "away"})
    await client.on_message(
        late, {"type": "message", "channel": "D1", "user": "U1", "text": "late", "ts": "9.1"}
    )
    assert events.seen == [RtmConnected("UBOT", "T1", reconnected=False)]
