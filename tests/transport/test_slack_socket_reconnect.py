"""SocketModeClient reconnects: refresh before close, socket loss, ping timeout, backoff, fatal."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tests.transport.slack_fake_ws import fake_slack_sockets
from tests.transport.test_slack_socket import Recorder, make_client
from transport.slack_errors import SlackFatalDisconnect


@pytest.mark.parametrize("reason", ["refresh_requested", "warning"])
async def test_a_refresh_opens_the_new_link_before_closing_the_old(
    autojump_clock: object, reason: str
) -> None:
    recorder = Recorder()
    with trio.fail_after(60):
        async with fake_slack_sockets() as fake, trio.open_nursery() as nursery:
            client = make_client(fake, recorder)
            await nursery.start(client.run)
            old = await fake.next_peer(1)
            fake.hello_delay = 4.0  # the next link takes a while to say hello
            await old.send({"type": "disconnect", "reason": reason})
            await trio.sleep(1)
            await old.envelope("E1", {"event_id": "Ev1"})  # the old link still works meanwhile
            new = await fake.next_peer(2)
            await old.closed.wait()
            await new.envelope("E2", {"event_id": "Ev2"})
            await recorder.wait_for(2)
            stats = client.statistics().links
            nursery.cancel_scope.cancel()
    assert old.acks() == ["E1"] and new.acks() == ["E2"]
    assert recorder.ids == ["E1", "E2"]
    assert fake.times("hello 2") == [4.0]
    assert fake.times("closed 1")[0] >= 4.0
    assert [at for at, _, _ in fake.url_requests] == [0.0, 0.0]
    assert stats.refreshes == 1 and stats.links_lost == 0 and stats.connected


async def test_a_lost_socket_reconnects_at_once_then_backs_off(autojump_clock: object) -> None:
    recorder = Recorder()
    with trio.fail_after(60):
        async with fake_slack_sockets() as fake, trio.open_nursery() as nursery:
            client = make_client(fake, recorder)
            await nursery.start(client.run)
            first = await fake.next_peer(1)
            await first.envelope("E1", {"event_id": "Ev1"})
            await recorder.wait_for(1)
            await trio.sleep(2)
            fake.url_errors.extend(["internal_error", "internal_error"])
            await first.close(1011)
            second = await fake.next_peer(2)
            # Slack redelivers what it thinks was not acked: handled once anyway.
            await second.envelope("E1", {"event_id": "Ev1"}, retry_attempt=1)
            await second.envelope("E2", {"event_id": "Ev2"})
            await recorder.wait_for(2)
            stats = client.statistics()
            nursery.cancel_scope.cancel()
    # Lost at t=2: one immediate attempt, then 1 s and 2 s of backoff.
    assert [at for at, _, _ in fake.url_requests] == [0.0, 2.0, 3.0, 5.0]
    assert fake.times("hello 2") == [5.0]
    assert recorder.ids == ["E1", "E2"] and second.acks() == ["E1", "E2"]
    assert stats.links.links_lost == 1 and stats.links.connect_failures == 2
    assert stats.duplicates == 1


async def test_a_link_without_hello_times_out_and_is_retried(autojump_clock: object) -> None:
    with trio.fail_after(60):
        async with fake_slack_sockets(hello=False) as fake, trio.open_nursery() as nursery:
            client = make_client(fake, Recorder())

            async def say_hello_next_time() -> None:
                await fake.first_connection.wait()
                fake.hello = True

            nursery.start_soon(say_hello_next_time)
            await nursery.start(client.run)
            started_at = trio.current_time()
            nursery.cancel_scope.cancel()
    # connect_timeout 5 s without hello, then 1 s of backoff, then hello at once.
    assert started_at == 6.0
    assert [at for at, _, _ in fake.url_requests] == [0.0, 6.0]
    assert fake.times("closed 1") and fake.times("closed 1")[0] >= 5.0


async def test_an_unanswered_ping_counts_as_a_lost_socket(autojump_clock: object) -> None:
    recorder = Recorder()
    with trio.fail_after(60):
        async with fake_slack_sockets() as fake, trio.open_nursery() as nursery:
            client = make_client(fake, recorder)
            await nursery.start(client.run)
            first = await fake.next_peer(1)
            first.mute = True  # stops reading after the first ack; its reader fills and stalls
            for i in range(3):
                await first.envelope(f"E{i}", {"event_id": f"Ev{i}"})
            await recorder.wait_for(3)
            second = await fake.next_peer(2)
            nursery.cancel_scope.cancel()
    # Ping at t=10 unanswered within 5 s: lost at t=15 and replaced at once.
    assert [at for at, _, _ in fake.url_requests] == [0.0, 15.0]
    assert fake.times("hello 2") == [15.0]
    assert second.number == 2


async def test_link_disabled_is_fatal_and_acked_envelopes_are_still_handed_on(
    autojump_clock: object,
) -> None:
    release = trio.Event()
    recorder = Recorder()

    async def slow(envelope: object) -> None:
        await release.wait()
        await recorder(envelope)  # type: ignore[arg-type]

    with trio.fail_after(60):
        async with fake_slack_sockets() as fake:
            client = make_client(fake, slow)
            async with trio.open_nursery() as nursery:

                async def drive() -> None:
                    peer = await fake.next_peer(1)
                    await peer.envelope("E1", {"event_id": "Ev1"})
                    await peer.wait_for(1)
                    await peer.send({"type": "disconnect", "reason": "link_disabled"})
                    await trio.testing.wait_all_tasks_blocked()
                    release.set()

                nursery.start_soon(drive)
                with pytest.raises(SlackFatalDisconnect) as caught:
                    await client.run()
    assert caught.value.reason == "link_disabled"
    assert recorder.ids == ["E1"]
    assert len(fake.url_requests) == 1  # no reconnect


async def test_a_refresh_that_cannot_open_a_new_link_keeps_the_old_one(
    autojump_clock: object,
) -> None:
    recorder = Recorder()
    with trio.fail_after(60):
        async with fake_slack_sockets() as fake, trio.open_nursery() as nursery:
            client = make_client(fake, recorder)
            await nursery.start(client.run)
            old = await fake.next_peer(1)
            fake.url_errors.extend(["internal_error"] * 3)
            await old.send({"type": "disconnect", "reason": "refresh_requested"})
            await trio.sleep(2.5)
            await old.envelope("E1", {"event_id": "Ev1"})
            await recorder.wait_for(1)
            new = await fake.next_peer(2)
            await old.closed.wait()
            nursery.cancel_scope.cancel()
    assert [at for at, _, _ in fake.url_requests] == [0.0, 0.0, 1.0, 3.0, 7.0]
    assert recorder.ids == ["E1"] and old.acks() == ["E1"] and new.number == 2


async def test_unusable_urls_and_refused_connections_are_retried(autojump_clock: object) -> None:
    with trio.fail_after(60):
        async with fake_slack_sockets() as fake, trio.open_nursery() as nursery:
            fake.url_script.extend(["ws://[not-a-host/", "ws://127.0.0.1:1/nobody-listens"])
            client = make_client(fake, Recorder())
            await nursery.start(client.run)
            stats = client.statistics().links
            nursery.cancel_scope.cancel()
    assert [at for at, _, _ in fake.url_requests] == [0.0, 1.0, 3.0]
    assert stats.connect_failures == 2 and stats.links_opened == 1
