"""Events API mode: POSTing events, interactions and slash commands to the app's URLs, signed.

Owns request signing exactly as Slack signs (`X-Slack-Request-Timestamp`, and `X-Slack-Signature`
= "v0=" + HMAC-SHA256 of "v0:<timestamp>:<body>" under the signing secret), the 3-second answer
window, and Slack's retries of event callbacks: up to three, immediately, after one minute and
after five, each re-signed and carrying `X-Slack-Retry-Num` and `X-Slack-Retry-Reason`
(`http_timeout`, `http_error`, `connection_failed`). Interactions and commands are not retried.
First attempts go out in order through one worker; retries run beside it.

Accepts: `submit()` from the event router; `run()` owns the HTTP client and the worker.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import structlog
import trio

__all__ = ["Delivery", "HttpDelivery", "HttpDeliveryStats", "sign"]

log = structlog.get_logger("emulator.events_http")

RETRY_DELAYS_S = (0.0, 60.0, 300.0)
ANSWER_WINDOW_S = 3.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Delivery:
    url: str
    body: bytes
    content_type: str
    retryable: bool
    on_answer: Callable[[httpx.Response], None] | None = None


@dataclass(frozen=True, slots=True)
class HttpDeliveryStats:
    submitted: int
    delivered: int
    failed_attempts: int
    given_up: int


class HttpDelivery:
    def __init__(
        self,
        signing_secret: str,
        *,
        retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S,
        transport: httpx.AsyncBaseTransport | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.signing_secret = signing_secret
        self.retry_delays_s = retry_delays_s
        self._transport = transport
        self._wall_clock = wall_clock
        self._send, self._receive = trio.open_memory_channel[Delivery](math.inf)
        self._nursery: trio.Nursery | None = None
        self._submitted = self._delivered = self._failed = self._given_up = 0

    def submit(self, delivery: Delivery) -> None:
        self._submitted += 1
        self._send.send_nowait(delivery)

    def statistics(self) -> HttpDeliveryStats:
        return HttpDeliveryStats(self._submitted, self._delivered, self._failed, self._given_up)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with (
            httpx.AsyncClient(transport=self._transport) as client,
            trio.open_nursery() as nursery,
        ):
            task_status.started()
            async for delivery in self._receive:
                failure = await self._attempt(client, delivery, 0)
                if failure is not None and delivery.retryable:
                    nursery.start_soon(self._retry, client, delivery, failure)

    async def _retry(self, client: httpx.AsyncClient, delivery: Delivery, reason: str) -> None:
        for number, delay in enumerate(self.retry_delays_s, start=1):
            await trio.sleep(delay)
            failure = await self._attempt(client, delivery, number, reason)
            if failure is None:
                return
            reason = failure
        self._given_up += 1
        log.warning(
            "event_delivery_gave_up", url=delivery.url, attempts=len(self.retry_delays_s) + 1
        )

    async def _attempt(
        self, client: httpx.AsyncClient, delivery: Delivery, number: int, reason: str = ""
    ) -> str | None:
        """One signed POST; None when the app answered 2xx in time, else the retry reason."""
        timestamp = str(int(self._wall_clock()))
        headers = {
            "Content-Type": delivery.content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(self.signing_secret, timestamp, delivery.body),
        }
        if number:
            headers["X-Slack-Retry-Num"] = str(number)
            headers["X-Slack-Retry-Reason"] = reason
        response: httpx.Response | None = None
        with trio.move_on_after(ANSWER_WINDOW_S):
            try:
                response = await client.post(delivery.url, content=delivery.body, headers=headers)
            except httpx.HTTPError as e:
                self._failed += 1
                log.info(
                    "event_delivery_failed",
                    url=delivery.url,
                    attempt=number,
                    error=type(e).__name__,
                )
                return "connection_failed"
        if response is None:
            self._failed += 1
            log.info(
                "event_delivery_failed", url=delivery.url, attempt=number, error="http_timeout"
            )
            return "http_timeout"
        if not 200 <= response.status_code < 300:
            self._failed += 1
            log.info(
                "event_delivery_failed",
                url=delivery.url,
                attempt=number,
                status=response.status_code,
            )
            return "http_error"
        self._delivered += 1
        if delivery.on_answer is not None:
            delivery.on_answer(response)
        return None
