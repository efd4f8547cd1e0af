"""/healthz and /metrics of a whole daemon: healthy when up, 503 naming Slack while its link is
down (and healthy again once it reconnects), every metric family the daemon wires in present."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from trio.testing import MockClock

from tests.e2e.ops_stack import OpsStack, ops_stack


async def _health(stack: OpsStack) -> tuple[int, dict[str, Any]]:
    answer = await stack.http.get(stack.chat + "/healthz")
    return answer.status_code, answer.json()


async def test_health_turns_503_while_the_slack_link_is_down(
    tmp_path: Path, e2e_clock: MockClock
) -> None:
    async with ops_stack("emulator", tmp_path) as stack:
        assert await _health(stack) == (
            200,
            {
                "status": "ok",
                "components": {"chat_api": "ok", "slack": "ok", "journal": "ok", "actors": "ok"},
            },
        )
        # Slack refuses new Socket Mode links, then the open one drops
        await stack.emu_post(
            "/_emu/faults",
            {"fail": {"share": 1, "error": "fatal_error", "methods": ["apps.connections.open"]}},
        )
        await stack.emu_post("/_emu/faults", {"drop_sockets": "socket_mode"})

        async def down() -> dict[str, Any] | None:
            status, body = await _health(stack)
            return body if status == 503 else None

        body = await stack.until(down)
        assert body["status"] == "unavailable"
        assert body["components"] == {
            "chat_api": "ok",
            "slack": "down",
            "journal": "ok",
            "actors": "ok",
        }
        await stack.emu_post("/_emu/faults", {"reset": True})

        async def up() -> bool | None:
            return True if (await _health(stack))[0] == 200 else None

        await stack.until(up)


async def test_metrics_of_the_daemon_cover_every_piece(
    tmp_path: Path, e2e_clock: MockClock
) -> None:
    async with ops_stack("emulator", tmp_path) as stack:
        await stack.session("hello there")
        answer = await stack.http.get(stack.chat + "/metrics")
        assert answer.status_code == 200
        families = {f.name: f for f in text_string_to_metric_families(answer.text)}
        for name in (
            "takeover_escalations",
            "takeover_offers",
            "takeover_time_to_accept_seconds",
            "takeover_relay_latency_seconds",
            "takeover_takeovers_active",
            "takeover_agent_load",
            "takeover_slack_api_calls",
            "takeover_slack_api_rate_limited",
            "takeover_slack_connected",
            "takeover_journal_fsync_seconds",
        ):
            assert name in families, name
        connected = families["takeover_slack_connected"].samples[0].value
        assert connected == 1
        calls = {s.labels["method"] for s in families["takeover_slack_api_calls"].samples}
        assert {"auth.test", "apps.connections.open", "users.getPresence"} <= calls
        directions = {
            s.labels.get("direction") for s in families["takeover_relay_latency_seconds"].samples
        }
        assert directions == {"to_room", "to_customer"}
        records = families["takeover_journal_records"].samples[0].value
        assert records >= 3  # the session, the customer's line, the bot's answer


async def test_what_start_up_built_is_left_out_of_full_collections(
    tmp_path: Path, e2e_clock: MockClock
) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        async with ops_stack("emulator", tmp_path) as stack:
            answer = await stack.http.get(stack.chat + "/healthz")
            assert answer.status_code == 200
            assert gc.get_freeze_count() > 0  # frozen once the daemon was up
    finally:
        gc.unfreeze()
