"""Block Kit for the stats agents and managers see in Slack: the App Home tab and the team table.

Owns `home_view` (an agent's Home tab: availability, load, their own offer stats and median time
to accept, with an "I'm available" button when they are away), `team_table` (the text table
`/takeover-stats` answers with) and `away_notice` (the DM an agent gets when set away after
missing offers). Pure functions of `actors.stats.AgentStats`; every name from Slack is escaped
for mrkdwn. Action id: `agent_available` (the agent says they are back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from actors.stats import AgentStats
from transport.slack_text import escape_mrkdwn

__all__ = [
    "ACTION_AVAILABLE",
    "TABLE_CHUNK",
    "away_notice",
    "home_view",
    "not_an_agent_view",
    "status_of",
    "team_blocks",
    "team_table",
]

ACTION_AVAILABLE = "agent_available"
TABLE_CHUNK = 2_800  # a section's text holds 3,000 characters; the code fences need a few
MAX_TABLE_SECTIONS = 40  # a message holds 50 blocks


def status_of(agent: AgentStats) -> str:
    if agent.available:
        return "available"
    if not agent.active:
        return "away"
    if agent.pending:
        return "offer pending"
    return "at capacity"


_STATUS_LINE = {
    "available": ":large_green_circle: Available: you can get the next chat.",
    "away": ":white_circle: Away: no chats are offered to you.",
    "offer pending": ":large_yellow_circle: An offer is waiting for your answer.",
    "at capacity": ":red_circle: At capacity: no new chats until one ends.",
}


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.0f} s"
    return f"{value / 60:.1f} min"


def _field(label: str, value: object) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": f"*{label}*\n{value}"}


def _button(text: str) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": ACTION_AVAILABLE,
        "text": {"type": "plain_text", "text": text},
        "value": "available",
        "style": "primary",
    }


def home_view(agent: AgentStats, *, updated_at: float) -> dict[str, Any]:
    """The agent's Home tab."""
    status = status_of(agent)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Your takeover chats"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _STATUS_LINE[status]}},
    ]
    if status == "away":
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "Set yourself active in Slack, or tell takeover you are back:",
                },
                "accessory": _button("I'm available"),
            }
        )
    blocks += [
        {
            "type": "section",
            "fields": [
                _field("Active chats", agent.load),
                _field("Offered", agent.offered),
                _field("Accepted", agent.accepted),
                _field("Ignored", agent.ignored),
                _field("Missed", agent.missed),
                _field("Median time to accept", _seconds(agent.time_to_accept_median_s)),
            ],
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"Withdrawn offers: {agent.withdrawn}. Takeovers ended: {agent.ended}."
                    f" Updated <!date^{int(updated_at)}^{{date_short_pretty}} {{time_secs}}|now>.",
                }
            ],
        },
    ]
    return {"type": "home", "blocks": blocks}


def not_an_agent_view(*, updated_at: float) -> dict[str, Any]:
    """Home for someone outside the agent pool (a manager, say)."""
    text = (
        "You are not in takeover's agent pool, so no chats are offered to you. "
        "Run `/takeover-stats` in any channel to see the team."
    )
    return {
        "type": "home",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "takeover"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"Updated <!date^{int(updated_at)}^{{time_secs}}|now>.",
                    }
                ],
            },
        ],
    }


_COLUMNS = ("Agent", "Status", "Load", "Offered", "Accepted", "Ignored", "Missed", "Median accept")


def team_table(agents: Sequence[AgentStats], names: Mapping[str, str] | None = None) -> list[str]:
    """The team as aligned text rows (header first), by name (`names`: Slack names by agent
    id; else the stats' own); names are escaped for mrkdwn."""
    named = [((names or {}).get(a.id) or a.name, a) for a in agents]
    rows = [_COLUMNS]
    for name, a in sorted(named, key=lambda pair: pair[0].lower()):
        rows.append(
            (
                escape_mrkdwn(name[:24]),
                status_of(a),
                str(a.load),
                str(a.offered),
                str(a.accepted),
                str(a.ignored),
                str(a.missed),
                _seconds(a.time_to_accept_median_s),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def team_blocks(
    agents: Sequence[AgentStats], names: Mapping[str, str] | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """`/takeover-stats`: a fallback text and the table in code sections (split to fit)."""
    available = sum(1 for a in agents if a.available)
    summary = f"*Team:* {available} of {len(agents)} agents available now."
    chunks: list[list[str]] = [[]]
    size = 0
    for line in team_table(agents, names):
        if size + len(line) + 1 > TABLE_CHUNK and chunks[-1]:
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += len(line) + 1
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": summary}}
    ]
    for chunk in chunks[:MAX_TABLE_SECTIONS]:
        text = "```\n" + "\n".join(chunk) + "\n```"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    if len(chunks) > MAX_TABLE_SECTIONS:
        more = f"{len(chunks) - MAX_TABLE_SECTIONS} more parts left out; see GET /api/stats."
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    return summary.replace("*", ""), blocks


def away_notice(misses: int) -> tuple[str, list[dict[str, Any]]]:
    """The DM of an agent set away after `misses` missed offers in a row."""
    text = (
        f"You missed {misses} chat offers in a row, so takeover has stopped offering you chats. "
        "Set yourself active in Slack, or press the button when you are back."
    )
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "actions", "elements": [_button("I'm available")]},
    ]
    return text, blocks
