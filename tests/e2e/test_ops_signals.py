"""Running it: signals to a real daemon process.

- SIGHUP reloads settings.yaml under a running daemon: the next offer uses the new offer timeout
  (its DM's expiry and its miss time say so), sessions survive, keys that cannot change live are
  reported as needing a restart, and a bad file (or knowledge base) is refused with the reason
  while the old settings stay.
- SIGTERM drains: the pending offer is withdrawn and its DM updated, the journal keeps it (a
  restart shows the withdrawn offer in the stats), the process exits 0; no token or secret, the
  customer's session token included, appears anywhere in the log.

Real processes and real time: waits poll with hard deadlines.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import signal
from pathlib import Path
from typing import Any

import httpx
import trio

from emulator import AgentSeed, Emulator, EmulatorConfig
from tests.e2e.ops_process import Daemon, write_settings

DATE_TOKEN = re.compile(r"<!date\^(\d+)\^")
POLL_S = 0.05


def _base(tmp_path: Path) -> dict[str, Any]:
    return {
        "http": {"port": 0},
        "slack": {"mode": "emulator"},
        "emulator": {"port": 0, "agents": [{"name": "alice", "real_name": "Alice Moreau"}]},
        "routing": {"offer_timeout_s": 30, "presence_poll_interval_s": 5},
        "journal": {"path": str(tmp_path / "journal"), "fsync": "batch"},
        "log": {"level": "info", "format": "json"},
    }


async def _poll(find: Any, deadline_s: float = 30.0) -> Any:
    """`await find()` once it is not None, polling a real process with a hard deadline."""
    with trio.fail_after(deadline_s):
        while (found := await find()) is None:  # noqa: ASYNC110 - a real process: poll it
            await trio.sleep(POLL_S)
        return found


async def _available(http: httpx.AsyncClient, chat: str) -> None:
    async def find() -> bool | None:
        agents = (await http.get(chat + "/api/stats")).json()["agents"]
        return True if agents and all(a["available"] for a in agents) else None

    await _poll(find)


async def _escalate(http: httpx.AsyncClient, chat: str) -> tuple[str, dict[str, str]]:
    opened = (await http.post(chat + "/api/sessions", json={"name": "Ada"})).json()
    auth = {"Authorization": f"Bearer {opened['token']}"}
    said = await http.post(
        f"{chat}/api/sessions/{opened['session_id']}/messages",
        json={"text": "I want to talk to a human"},
        headers=auth,
    )
    assert said.status_code == 202
    return opened["session_id"], auth


def _buttons(message: dict[str, Any]) -> bool:
    return "offer_accept" in str(message.get("blocks", ""))


async def _offers(http: httpx.AsyncClient, emu: str, user: str) -> list[dict[str, Any]]:
    channels = (await http.get(emu + "/_emu/channels")).json()["channels"]
    dm = next((c["id"] for c in channels if c["is_im"] and user in c["members"]), None)
    if dm is None:
        return []
    messages = (await http.get(emu + "/_emu/messages", params={"channel": dm})).json()["messages"]
    return [
        m | {"channel": dm}
        for m in messages
        if "offer" in str(m.get("metadata", "")) or "offer_" in str(m.get("blocks", ""))
    ]


async def _offer(http: httpx.AsyncClient, emu: str, user: str, number: int) -> dict[str, Any]:
    async def find() -> dict[str, Any] | None:
        offers = await _offers(http, emu, user)
        return (
            offers[number - 1] if len(offers) >= number and _buttons(offers[number - 1]) else None
        )

    return dict(await _poll(find))


def _expires_after(offer: dict[str, Any]) -> float:
    """Seconds from the DM's post to the expiry its date token shows."""
    expiry = int(DATE_TOKEN.search(str(offer["blocks"]) + offer["text"]).group(1))  # type: ignore[union-attr]
    return expiry - float(offer["ts"])


def _at(line: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(line["timestamp"]).timestamp()


async def test_sighup_reload_applies_the_new_offer_timeout_to_the_next_offer(
    tmp_path: Path,
) -> None:
    path = tmp_path / "settings.yaml"
    data = _base(tmp_path)
    write_settings(path, data)
    daemon = Daemon(path)
    async with httpx.AsyncClient(timeout=10) as http, trio.open_nursery() as nursery:
        await daemon.start(nursery)
        try:
            started = await daemon.wait_log("daemon_started")
            chat = started["widget"].rstrip("/")
            emu = started["agent_console"].removesuffix("/_emu/")
            alice = (await http.get(emu + "/_emu/users")).json()["users"][0]["id"]
            await _available(http, chat)

            first_session, first_auth = await _escalate(http, chat)
            first = await _offer(http, emu, alice, 1)
            assert 25 <= _expires_after(first) <= 30.5  # its expiry, seen from when it was posted

            changed = copy.deepcopy(data)
            changed["routing"]["offer_timeout_s"] = 3
            changed["journal"]["fsync"] = "always"  # cannot change live
            write_settings(path, changed)
            daemon.signal(signal.SIGHUP)
            reloaded = await daemon.wait_log("settings_reloaded")
            assert reloaded["live"] == ["routing.offer_timeout_s"]
            assert reloaded["restart_needed"] == ["journal.fsync"]

            # the session searching before the reload is still there; its offer keeps its 30 s
            await http.post(
                emu + "/_emu/click",
                json={
                    "user": alice,
                    "channel": first["channel"],
                    "ts": first["ts"],
                    "action_id": "offer_ignore",
                },
            )

            async def told_nobody() -> bool | None:
                events = await http.get(
                    f"{chat}/api/sessions/{first_session}/events", headers=first_auth
                )
                kinds = [e["type"] for e in events.json()["events"]]
                return True if "no_agent_available" in kinds else None

            await _poll(told_nobody)

            await _escalate(http, chat)
            second = await _offer(http, emu, alice, 2)
            assert 0 < _expires_after(second) <= 3.5
            made = await daemon.wait_log("offer_made", count=2)
            missed = await daemon.wait_log("offer_missed", deadline_s=15)
            assert missed["offer"] == made["offer"]
            assert 2.5 <= _at(missed) - _at(made) <= 10  # missed at the new, 3 s deadline (not 30)

            for bad, key in (
                ({"routing": {"offer_timeout_s": -5}}, "routing.offer_timeout_s"),
                ({"routing": {"offer_timout_s": 5}}, "routing.offer_timout_s"),
                ({"bot": {"knowledge_base": "missing.yaml"}}, "bot.knowledge_base"),
            ):
                broken = copy.deepcopy(changed)
                for section, values in bad.items():
                    broken[section] = broken.get(section, {}) | values
                write_settings(path, broken)
                daemon.signal(signal.SIGHUP)
                refused = await daemon.wait_log(
                    "settings_reload_refused", where=lambda line, k=key: k in line["reason"]
                )
                assert refused["level"] == "error"
            path.write_text("routing: [unclosed", encoding="utf-8")
            daemon.signal(signal.SIGHUP)
            await daemon.wait_log(
                "settings_reload_refused", where=lambda line: "invalid YAML" in line["reason"]
            )
            assert len(daemon.events("settings_reloaded")) == 1  # nothing else was applied
            health = await http.get(chat + "/healthz")
            assert health.status_code == 200 and health.json()["status"] == "ok"

            daemon.signal(signal.SIGTERM)
            assert await daemon.wait_exit() == 0
        finally:
            daemon.kill()


async def test_sigterm_withdraws_the_offer_keeps_it_in_the_journal_and_logs_no_secrets(
    tmp_path: Path,
) -> None:
    emulator = Emulator(EmulatorConfig(agents=(AgentSeed("alice", "Alice Moreau", "Lead"),)))
    creds = emulator.credentials
    async with httpx.AsyncClient(timeout=10) as http, trio.open_nursery() as nursery:
        emu = str(await nursery.start(emulator.run))
        alice = (await http.get(emu + "/_emu/users")).json()["users"][0]["id"]
        path = tmp_path / "settings.yaml"
        data = _base(tmp_path)
        data["slack"] = {
            "mode": "socket",
            "api_url": emu + "/api/",
            "bot_token": creds.bot_token,
            "app_token": creds.app_token,
            "signing_secret": creds.signing_secret,
        }
        data["routing"]["agents"] = [alice]
        write_settings(path, data)

        daemon = Daemon(path)
        await daemon.start(nursery)
        try:
            chat = (await daemon.wait_log("daemon_started"))["widget"].rstrip("/")
            await _available(http, chat)
            health = (await http.get(chat + "/healthz")).json()
            assert health == {
                "status": "ok",
                "components": {"chat_api": "ok", "slack": "ok", "journal": "ok", "actors": "ok"},
            }
            opened = (await http.post(chat + "/api/sessions", json={})).json()
            said = await http.post(
                f"{chat}/api/sessions/{opened['session_id']}/messages",
                json={"text": "I want to talk to a human"},
                headers={"Authorization": f"Bearer {opened['token']}"},
            )
            assert said.status_code == 202
            offer = await _offer(http, emu, alice, 1)

            daemon.signal(signal.SIGTERM)
            assert await daemon.wait_exit() == 0
        finally:
            daemon.kill()
        for event in ("daemon_draining", "offer_withdrawn_on_shutdown", "daemon_stopped"):
            assert daemon.events(event), event
        [resolved] = await _offers(http, emu, alice)
        assert resolved["ts"] == offer["ts"] and not _buttons(resolved)
        assert "Withdrawn" in resolved["text"] + str(resolved["blocks"])

        log = bytes(daemon.raw)
        for secret in (creds.bot_token, creds.app_token, creds.signing_secret, opened["token"]):
            assert secret.encode() not in log
        assert b"xoxb-" not in log and b"xapp-" not in log

        again = Daemon(path)  # the journal kept the withdrawn offer: a restart shows it
        await again.start(nursery)
        try:
            chat = (await again.wait_log("daemon_started"))["widget"].rstrip("/")
            [stats] = (await http.get(chat + "/api/stats")).json()["agents"]
            assert (stats["offered"], stats["withdrawn"], stats["pending"]) == (1, 1, 0)
            again.signal(signal.SIGTERM)
            assert await again.wait_exit() == 0
        finally:
            again.kill()
        nursery.cancel_scope.cancel()
