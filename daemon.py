"""The composition root: one root nursery starting the journal, the actors, Slack and the chat API."""

from __future__ import annotations

import contextlib

import structlog
import trio

from actors.settings import Settings


async def serve(
    settings: Settings, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    log = structlog.get_logger("daemon")
    log.info("daemon_started", slack_mode=settings.slack.mode)
    task_status.started()
    await trio.sleep_forever()


def run_daemon(settings: Settings) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(serve, settings)
    return 0
