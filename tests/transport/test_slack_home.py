"""The App Home service at its edges: what it claims from the inbound pipeline (any payload at
all, never raising), the team table's escaping and size limits, the DM fallback when Slack
refuses an ephemeral, and a full mailbox."""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.stats import AgentStats, DomainStats
from transport.slack_decode import InboundRequest
from transport.slack_home import (
    AvailableAsked,
    HomeOpened,
    SlackHome,
    StatsAsked,
    decode_app_request,
)
from transport.slack_home_views import TABLE_CHUNK, home_view, team_blocks
from transport.slack_web import SlackWebClient

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
kinds = st.sampled_from(["events_api", "interactive", "slash_commands", "rtm"])


def agent(agent_id: str = "U1", name: str = "alice", **fields: Any) -> AgentStats:
    base: dict[str, Any] = dict(
        id=agent_id, name=name, available=True, active=True, load=0, offered=0, accepted=0,
        ignored=0, missed=0, withdrawn=0, pending=0, ended=0, time_to_accept_median_s=None,
        time_to_accept_p90_s=None, first_response_median_s=None, takeover_median_s=None,
    )  # fmt: skip
    return AgentStats(**(base | fields))


@settings(max_examples=300, deadline=None)
@given(kinds, json_values)
def test_any_payload_is_claimed_or_left_never_raises(kind: str, payload: Any) -> None:
    result = decode_app_request(InboundRequest(kind, payload))  # type: ignore[arg-type]
    assert isinstance(result, bool | HomeOpened | StatsAsked | AvailableAsked)


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {"type": st.just("event_callback") | json_values},
        optional={
            "event": st.fixed_dictionaries(
                {"type": st.just("app_home_opened") | json_values},
                optional={"user": st.text(max_size=5) | json_values, "tab": json_values},
            )
        },
    ),
    st.fixed_dictionaries(
        {"command": st.just("/takeover-stats") | json_values},
        optional={"user_id": json_values, "channel_id": json_values},
    ),
)
def test_near_valid_payloads_are_ours_only_when_well_formed(event: Any, command: Any) -> None:
    opened = decode_app_request(InboundRequest("events_api", event))
    if isinstance(opened, HomeOpened):
        assert event["event"]["user"] == opened.user_id and opened.user_id
    asked = decode_app_request(InboundRequest("slash_commands", command))
    if isinstance(asked, StatsAsked):
        assert (command["user_id"], command["channel_id"]) == (asked.user_id, asked.channel_id)
    else:
        assert asked is False


def test_well_formed_requests_are_decoded() -> None:
    home = {
        "type": "event_callback",
        "event": {"type": "app_home_opened", "user": "U1", "tab": "home"},
    }
    other_tab = {
        "type": "event_callback",
        "event": {"type": "app_home_opened", "user": "U1", "tab": "messages"},
    }
    click = {
        "type": "block_actions",
        "user": {"id": "U2"},
        "actions": [{"action_id": "agent_available"}],
    }
    command = {"command": "/takeover-stats", "user_id": "U3", "channel_id": "C1"}
    assert decode_app_request(InboundRequest("events_api", home)) == HomeOpened("U1")
    assert decode_app_request(InboundRequest("events_api", other_tab)) is True
    assert decode_app_request(InboundRequest("interactive", click)) == AvailableAsked("U2")
    assert decode_app_request(InboundRequest("slash_commands", command)) == StatsAsked("U3", "C1")
    end = {"command": "/end-takeover", "user_id": "U3", "channel_id": "C1"}
    assert decode_app_request(InboundRequest("slash_commands", end)) is False


def test_the_team_table_escapes_names_and_fits_slack_limits() -> None:
    text, blocks = team_blocks([agent(name="<!channel> & co", available=False, active=False)])
    table = blocks[1]["text"]["text"]
    assert "&lt;!channel&gt; &amp; co" in table and "<!channel>" not in table
    assert text == "Team: 0 of 1 agents available now."
    many = [agent(f"U{n:04d}", f"agent-{n:04d}-" + "x" * 10) for n in range(2_000)]
    _, blocks = team_blocks(many)
    assert len(blocks) <= 50
    assert all(len(b["text"]["text"]) <= 3_000 for b in blocks if b["type"] == "section")
    assert all(len(b["text"]["text"]) <= TABLE_CHUNK + 8 for b in blocks[1:-1])
    assert (
        home_view(agent(available=False, active=False), updated_at=0)["blocks"][2]["accessory"][
            "action_id"
        ]
        == "agent_available"
    )


async def test_a_refused_ephemeral_comes_as_a_dm(autojump_clock: trio.testing.MockClock) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def slack(request: httpx.Request) -> httpx.Response:
        method = request.url.path.rsplit("/", 1)[-1]
        body = json.loads(request.content) if request.content.startswith(b"{") else {}
        calls.append((method, body))
        if method == "chat.postEphemeral":
            return httpx.Response(200, json={"ok": False, "error": "channel_not_found"})
        if method == "chat.postMessage":
            return httpx.Response(200, json={"ok": True, "ts": "1.0", "channel": "D1"})
        return httpx.Response(200, json={"ok": True})

    web = SlackWebClient(
        "xoxb-t", api_url="http://slack.test/api/", transport=httpx.MockTransport(slack)
    )
    stats = DomainStats((agent(),), (), {}, 0)

    async def deliver(fact: object) -> None:
        raise AssertionError("nothing to deliver")

    async def presence(agent_id: str) -> bool:
        return True

    async def dm(user_id: str) -> str:
        return "D1"

    home = SlackHome(
        web,
        stats=lambda: stats,
        deliver=deliver,
        presence=presence,
        dm_channel=dm,
        agents=["U1"],
        capacity=2,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(home.run)
        command = {"command": "/takeover-stats", "user_id": "U9", "channel_id": "C7"}
        assert home.claim(InboundRequest("slash_commands", command))
        await trio.testing.wait_all_tasks_blocked()
        posted = [body for method, body in calls if method == "chat.postMessage"]
        assert len(posted) == 1 and posted[0]["channel"] == "D1"
        assert "Median accept" in json.dumps(posted[0]["blocks"])
        nursery.cancel_scope.cancel()
    await web.aclose()


def test_a_full_mailbox_drops_and_counts(autojump_clock: trio.testing.MockClock) -> None:
    async def never(*args: Any) -> Any:
        raise AssertionError

    web = SlackWebClient(
        "xoxb-t",
        api_url="http://slack.test/api/",
        transport=httpx.MockTransport(lambda r: httpx.Response(500)),
    )
    home = SlackHome(
        web,
        stats=lambda: DomainStats((), (), {}, 0),
        deliver=never,
        presence=never,
        dm_channel=never,
        agents=[],
        capacity=1,
    )
    command = InboundRequest(
        "slash_commands", {"command": "/takeover-stats", "user_id": "U1", "channel_id": "C1"}
    )
    assert home.claim(command) and home.claim(command)  # both ours; the second is dropped
    assert home.statistics().dropped == 1
