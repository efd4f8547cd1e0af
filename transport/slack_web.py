"""The Slack Web API client: one pooled transport, rate tiers, retries, and posts never duplicated.

Owns `SlackWebClient` and its `RetryPolicy`. `await client.call("chat.update", channel=..., ...)`
returns Slack's parsed answer when ``ok`` is true and raises the errors of
`transport.slack_errors` otherwise. Every call:

1. waits its turn in the `RateLimiter` (per-method tier, per-channel for chat.postMessage, and
   any ``Retry-After`` a 429 imposed on that method);
2. is sent through the injected `httpx.AsyncBaseTransport` (default: `TrioHttpTransport`, a
   keep-alive pool) under a per-attempt deadline;
3. on a transport error, timeout, 5xx or garbage answer, is retried after an exponential backoff
   with jitter, at most `RetryPolicy.max_attempts` times; on 429, waits ``Retry-After`` and
   retries without counting an attempt (bounded by `max_rate_limited_waits`).

chat.postMessage carries a unique ``post_id`` in its message metadata; a retry that follows an
ambiguous failure first looks for that id in the channel (`find_post`) and returns the message
found instead of posting it twice (see `transport.slack_web_post`). When no answer came at all
(timeout, connection lost), the lookup waits one more attempt deadline first: Slack may still
be serving the request.
"""

from __future__ import annotations

import random as _random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any

import httpx
import structlog
import trio

from transport.slack_backoff import Backoff, RandomSource
from transport.slack_errors import (
    SlackApiError,
    SlackError,
    SlackPostUncertain,
    SlackRateLimited,
    SlackTransportError,
)
from transport.slack_rate import RateLimiter, RateLimiterStatistics, RateLimits
from transport.slack_web_answer import (
    FORM_TYPE,
    JSON_TYPE,
    Endpoint,
    Failure,
    Headers,
    Limited,
    classify,
    encode_body,
    final_error,
)
from transport.slack_web_post import LOOKUP_MARGIN_S, PendingPost, PostIds
from transport.slack_web_post import (
    find_post as lookup_post,
)
from transport.slack_web_transport import TrioHttpTransport

_USER_ID_PREFIXES = ("U", "W")  # Slack's user ids; conversations start with C, G or D

if TYPE_CHECKING:
    from actors.settings import SlackSettings

__all__ = ["MethodStatistics", "RetryPolicy", "SlackWebClient", "SlackWebStatistics"]

_log = structlog.get_logger("transport.slack_web")

_METHOD_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.]*$")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts and waits of one call; `attempt_timeout_s` bounds each attempt, not the call."""

    max_attempts: int = 4
    backoff: Backoff = field(default_factory=Backoff)
    attempt_timeout_s: float = 10.0
    max_rate_limited_waits: int = 10
    default_retry_after_s: float = 1.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.attempt_timeout_s <= 0 or self.max_rate_limited_waits < 0:
            raise ValueError("retry policy needs max_attempts >= 1 and a positive attempt timeout")


@dataclass(frozen=True, slots=True)
class MethodStatistics:
    calls: int
    ok: int
    api_errors: int
    failed: int
    retries: int
    rate_limited: int


@dataclass(frozen=True, slots=True)
class SlackWebStatistics:
    """Counters since start; `queue` holds the per-method queueing delays of the rate limiter."""

    calls: int
    ok: int
    api_errors: int
    failed: int
    retries: int
    rate_limited: int
    in_flight: int
    post_lookups: int
    posts_recovered: int
    methods: Mapping[str, MethodStatistics]
    queue: RateLimiterStatistics


class _Counters:
    __slots__ = ("api_errors", "calls", "failed", "ok", "rate_limited", "retries")

    def __init__(self) -> None:
        self.calls = self.ok = self.api_errors = self.failed = self.retries = self.rate_limited = 0


class _Core:
    """What sibling clients (`with_token`) share: the transport, the tiers and the counters."""

    def __init__(
        self,
        api_url: str,
        transport: httpx.AsyncBaseTransport,
        limiter: RateLimiter,
        retry: RetryPolicy,
        random: RandomSource,
        wall_clock: Callable[[], float],
    ) -> None:
        if not api_url.startswith(("http://", "https://")):
            raise ValueError(f"slack api_url must be an http(s) URL, not {api_url!r}")
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self.transport = transport
        # Our own transport is driven directly, without httpx's Request/Response objects.
        self.raw = transport if isinstance(transport, TrioHttpTransport) else None
        self.limiter = limiter
        self.retry = retry
        self.random = random
        self.wall_clock = wall_clock
        self.endpoints: dict[str, Endpoint] = {}
        self.counters: dict[str, _Counters] = {}
        self.in_flight = self.post_lookups = self.posts_recovered = 0
        self.posts = PostIds()
        self.closed = False

    def endpoint(self, method: str) -> Endpoint:
        endpoint = self.endpoints.get(method)
        if endpoint is None:
            if not _METHOD_NAME.match(method):
                raise ValueError(f"not a Slack method name: {method!r}")
            endpoint = self.endpoints[method] = Endpoint(httpx.URL(self.api_url + method))
        return endpoint


class SlackWebClient:
    """Calls Slack's Web API with one token; construct once and share (it is concurrency-safe)."""

    def __init__(
        self,
        token: str,
        *,
        api_url: str = "https://slack.com/api/",
        transport: httpx.AsyncBaseTransport | None = None,
        rate_limits: RateLimits | None = None,
        retry: RetryPolicy | None = None,
        random: RandomSource = _random.random,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        core = _Core(
            api_url,
            transport if transport is not None else TrioHttpTransport(),
            RateLimiter(rate_limits),
            retry if retry is not None else RetryPolicy(),
            random,
            wall_clock,
        )
        self._init(token, core, owner=True)

    def _init(self, token: str, core: _Core, *, owner: bool) -> None:
        self._core = core
        self._owner = owner
        if not token.isascii() or not token.isprintable() or " " in token:
            raise ValueError("a Slack token is printable ASCII without spaces")
        auth = b"Bearer " + token.encode("ascii")
        self._headers = {
            ctype: [(b"Authorization", auth), (b"Content-Type", ctype)]
            for ctype in (JSON_TYPE, FORM_TYPE)
        }

    @classmethod
    def from_settings(
        cls,
        slack: SlackSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        rate_limits: RateLimits | None = None,
        retry: RetryPolicy | None = None,
    ) -> SlackWebClient:
        """The bot-token client for `slack.api_url` (`with_token(slack.app_token)` for Socket Mode)."""
        return cls(
            slack.bot_token,
            api_url=slack.api_url,
            transport=transport,
            rate_limits=rate_limits,
            retry=retry,
        )

    def with_token(self, token: str) -> SlackWebClient:
        """A client for another token sharing this one's pool, rate tiers and statistics."""
        sibling = SlackWebClient.__new__(SlackWebClient)
        sibling._init(token, self._core, owner=False)
        return sibling

    async def __aenter__(self) -> SlackWebClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pool (only the client that created it closes it)."""
        if self._owner and not self._core.closed:
            self._core.closed = True
            await self._core.transport.aclose()

    async def call(self, method: str, /, **params: Any) -> dict[str, Any]:
        """Call `method` with `params`; the parsed answer when ok, else a `SlackError`."""
        if method == "chat.postMessage":
            return await self._post(params, None)
        return await self._call(method, params, None, None)

    async def post_message(
        self, channel: str, /, *, post_id: str | None = None, **params: Any
    ) -> dict[str, Any]:
        """chat.postMessage, never duplicated by a retry; give `post_id` to choose the id yourself."""
        params["channel"] = channel
        return await self._post(params, post_id)

    async def find_post(
        self, channel: str, post_id: str, *, oldest: float, thread_ts: str | None = None
    ) -> dict[str, Any] | None:
        """The message carrying `post_id` posted at or after `oldest` (epoch seconds), or None.

        A post addressed to a user id went to their DM with the app, and Slack reads history
        only by conversation id: the DM is looked up first (conversations.open)."""
        self._core.post_lookups += 1
        if channel[:1] in _USER_ID_PREFIXES:
            opened = await self.call("conversations.open", users=channel)
            dm = opened.get("channel")
            channel = str(dm.get("id")) if isinstance(dm, dict) else channel
        found = await lookup_post(self._call, channel, post_id, oldest, thread_ts)
        if found is not None:
            self._core.posts_recovered += 1
        return found

    async def _post(self, params: dict[str, Any], post_id: str | None) -> dict[str, Any]:
        channel = params.get("channel")
        if not isinstance(channel, str) or not channel:
            return await self._call("chat.postMessage", params, None, None)
        params, post_id = self._core.posts.stamp(params, post_id)
        pending = PendingPost(channel, post_id, self._core.wall_clock(), params)
        return await self._call("chat.postMessage", params, channel, pending)

    async def _call(
        self,
        method: str,
        params: dict[str, Any],
        channel: str | None,
        post: PendingPost | None,
    ) -> dict[str, Any]:
        core = self._core
        if core.closed:
            raise SlackTransportError(method, "client is closed")
        counters = core.counters.get(method)
        if counters is None:
            counters = core.counters[method] = _Counters()
        counters.calls += 1
        endpoint = core.endpoint(method)
        body, ctype = encode_body(method, params)
        retry = core.retry
        failures = limited = 0
        core.in_flight += 1
        try:
            while True:
                await core.limiter.acquire(method, channel)
                try:
                    outcome = await self._attempt(method, endpoint, ctype, body)
                except SlackApiError:
                    counters.api_errors += 1
                    raise
                if type(outcome) is dict:
                    counters.ok += 1
                    return outcome
                if isinstance(outcome, Limited):
                    counters.rate_limited += 1
                    limited += 1
                    if limited > retry.max_rate_limited_waits:
                        counters.failed += 1
                        raise SlackRateLimited(method, outcome.retry_after, outcome.response)
                    _log.info("slack_rate_limited", method=method, retry_after=outcome.retry_after)
                    core.limiter.block(method, outcome.retry_after)
                    continue
                assert isinstance(outcome, Failure)
                failures += 1
                if failures >= retry.max_attempts:
                    counters.failed += 1
                    raise final_error(method, outcome, failures, post)
                counters.retries += 1
                delay = retry.backoff.delay(failures - 1, core.random)
                _log.info(
                    "slack_call_retry",
                    method=method,
                    failure=outcome.detail,
                    attempt=failures,
                    delay=round(delay, 3),
                )
                await trio.sleep(delay)
                if post is not None and outcome.maybe_sent:
                    if outcome.kind != "http":
                        # No answer: the request may still be on its way and be served later.
                        # Give it as long again as an attempt before looking, so a late post
                        # is found instead of made twice.
                        await trio.sleep(retry.attempt_timeout_s)
                    found = await self._recover(post, failures)
                    if found is not None:
                        counters.ok += 1
                        return found
        finally:
            core.in_flight -= 1

    async def _recover(self, post: PendingPost, attempts: int) -> dict[str, Any] | None:
        """Look for an ambiguous attempt's message before posting again."""
        oldest = post.started_at - LOOKUP_MARGIN_S
        try:
            return await self.find_post(
                post.channel, post.post_id, oldest=oldest, thread_ts=post.thread_ts
            )
        except SlackError as e:
            raise SlackPostUncertain(
                post.channel,
                post.post_id,
                f"lookup after an ambiguous failure failed: {e}",
                attempts=attempts,
            ) from None

    async def _send(
        self, endpoint: Endpoint, ctype: bytes, body: bytes
    ) -> tuple[int, Headers, bytes]:
        core = self._core
        headers = self._headers[ctype]
        if core.raw is not None:
            answer = await core.raw.exchange(
                endpoint.origin,
                b"POST",
                endpoint.target,
                [(b"Host", endpoint.host), *headers, (b"Content-Length", b"%d" % len(body))],
                body,
            )
            return answer.status, answer.headers, answer.body
        request = httpx.Request("POST", endpoint.url, headers=headers, content=body)
        response = await core.transport.handle_async_request(request)
        return response.status_code, response.headers, await response.aread()

    async def _attempt(
        self, method: str, endpoint: Endpoint, ctype: bytes, body: bytes
    ) -> dict[str, Any] | Failure | Limited:
        core = self._core
        try:
            with trio.move_on_after(core.retry.attempt_timeout_s) as scope:
                status, headers, content = await self._send(endpoint, ctype, body)
        except httpx.RequestError as e:
            sent = not isinstance(e, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
            return Failure("transport", f"{type(e).__name__}: {e}", sent)
        if scope.cancelled_caught:
            return Failure("timeout", f"no answer within {core.retry.attempt_timeout_s}s", True)
        return classify(method, status, headers, content, core.retry.default_retry_after_s)

    def rate_eta(self, method: str, channel: str | None = None) -> float:
        """Seconds until a call of `method` made now would pass its rate tier (0.0: at once)."""
        return self._core.limiter.eta(method, channel)

    def statistics(self) -> SlackWebStatistics:
        core = self._core
        methods = {
            name: MethodStatistics(c.calls, c.ok, c.api_errors, c.failed, c.retries, c.rate_limited)
            for name, c in sorted(core.counters.items())
        }
        values = methods.values()
        return SlackWebStatistics(
            calls=sum(m.calls for m in values),
            ok=sum(m.ok for m in values),
            api_errors=sum(m.api_errors for m in values),
            failed=sum(m.failed for m in values),
            retries=sum(m.retries for m in values),
            rate_limited=sum(m.rate_limited for m in values),
            in_flight=core.in_flight,
            post_lookups=core.post_lookups,
            posts_recovered=core.posts_recovered,
            methods=MappingProxyType(methods),
            queue=core.limiter.statistics(),
        )
