"""POST /_emu/faults: delays, failures and their seeded share, validation, reset."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from emulator.errors import SlackError
from emulator.faults import parse_request
from tests.emulator.conftest import InProcess


async def test_delay_holds_calls_for_the_given_virtual_time(
    running: InProcess, autojump_clock: trio.testing.MockClock
) -> None:
    token = running.emulator.credentials.bot_token
    with trio.fail_after(60):
        await running.emu(
            "POST",
            "/_emu/faults",
            json={"delay": {"share": 1.0, "seconds": 2.5, "methods": ["auth.test"]}},
        )
        start = trio.current_time()
        assert (await running.api("auth.test", token)).json()["ok"]
        assert trio.current_time() - start == pytest.approx(2.5)
        start = trio.current_time()
        await running.api("users.list", token)  # other methods are not delayed
        assert trio.current_time() - start == pytest.approx(0.0, abs=1e-9)


async def test_failures_hit_the_chosen_methods(running: InProcess) -> None:
    token = running.emulator.credentials.bot_token
    with trio.fail_after(10):
        knobs = {
            "fail": {
                "share": 1.0,
                "error": "internal_error",
                "status": 503,
                "methods": ["users.info"],
            }
        }
        await running.emu("POST", "/_emu/faults", json=knobs)
        failed = await running.api(
            "users.info", token, user=running.emulator.credentials.bot_user_id
        )
        assert (failed.status_code, failed.json()) == (
            503,
            {"ok": False, "error": "internal_error"},
        )
        assert (await running.api("auth.test", token)).json()["ok"]
        await running.emu("POST", "/_emu/faults", json={"reset": True})
        assert (
            await running.api("users.info", token, user=running.emulator.credentials.bot_user_id)
        ).json()["ok"]


async def test_a_share_is_picked_by_a_seeded_generator(running: InProcess) -> None:
    token = running.emulator.credentials.bot_token

    async def pattern() -> list[bool]:
        await running.emu("POST", "/_emu/faults", json={"seed": 42, "fail": {"share": 0.5}})
        return [(await running.api("auth.test", token)).json()["ok"] for _ in range(20)]

    with trio.fail_after(20):
        first, second = await pattern(), await pattern()
        assert first == second and 0 < first.count(False) < 20


async def test_knobs_are_shown_and_bad_ones_refused_whole(running: InProcess) -> None:
    with trio.fail_after(10):
        await running.emu("POST", "/_emu/faults", json={"rate_limits": True})
        refused = await running.emu(
            "POST", "/_emu/faults", json={"rate_limits": False, "delay": {"share": 2}}
        )
        assert refused.status_code == 400 and "delay.share" in refused.json()["detail"]
        shown = (await running.emu("GET", "/_emu/faults")).json()["faults"]
        assert shown == {"rate_limits": True, "delay": None, "fail": None, "ratelimit": None}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "JSON object"),
        ({"explode": True}, "unknown knob"),
        ({"drop_sockets": "everything"}, "drop_sockets"),
        ({"disconnect": "please"}, "disconnect"),
        ({"fail": {"status": 418}}, "fail.status"),
        ({"ratelimit": {"count": -1}}, "ratelimit.count"),
        ({"seed": "x"}, "seed"),
    ],
)
def test_invalid_knobs(body: object, problem: str) -> None:
    with pytest.raises(SlackError) as refused:
        parse_request(body)
    assert refused.value.code == "invalid_request" and problem in refused.value.extra["detail"]
