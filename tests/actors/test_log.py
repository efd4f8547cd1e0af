"""Logging: JSON lines off a terminal, and no token or secret ever rendered."""

from __future__ import annotations

import io
import json

import structlog

from actors.log import configure_logging


def test_json_lines_with_secrets_redacted() -> None:
    out = io.StringIO()
    configure_logging("info", "auto", stream=out)
    log = structlog.get_logger("test").bind(session_id="S1")
    log.info("slack_connected", bot_token="xoxb-123-abc", detail="sent xapp-1-AAA-999 to server")
    log.debug("not_shown")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "slack_connected"
    assert record["session_id"] == "S1"
    assert record["bot_token"] == "[redacted]"
    assert record["detail"] == "sent [redacted] to server"
    assert "xoxb-123" not in out.getvalue()


def test_console_renderer_when_asked() -> None:
    out = io.StringIO()
    configure_logging("debug", "console", stream=out)
    structlog.get_logger().debug("offer_missed", agent="U1", signing_secret="s3cr3t")
    text = out.getvalue()
    assert "offer_missed" in text and "agent" in text
    assert "s3cr3t" not in text
