"""The offer DMs: posting them, resolving them in place, and telling late clickers.

Owns `Offers`:
- `post(view)`: chat.postMessage of the offer view into the agent's DM with the app (the first
  one addressed by the agent's user id, as Slack allows, so an offer never waits for
  conversations.open's Tier 3 queue; the DM channel in the answer is remembered per agent); the
  channel and ts are kept per offer id;
- `resolve(cmd)`: chat.update of that message with its one outcome (no buttons left). An offer
  this process did not post (a restart in between) is found again in the DM's recent history by
  the offer id carried in the message metadata;
- `resolve_soon(cmd)`: the same, queued for `run_updates` (accepted offers first): chat.update
  is Tier 3 (about 50 a minute), so under a rush of offers the DMs' updates lag behind the
  outcomes, which the domain has decided already; they never hold up other Slack commands.
  `wait_updated()` waits until none is queued or running;
- `too_late(cmd)`: chat.postEphemeral in the DM ("nothing changed"), or a plain DM if that fails.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
import trio

from actors.ports import OfferOutcome, OfferView, ResolveOffer, TellTooLate
from transport.slack_blocks import OFFER_EVENT, offer_post, offer_resolved_post, too_late_text
from transport.slack_errors import SlackApiError
from transport.slack_web import SlackWebClient

__all__ = ["OfferDm", "Offers"]

_log = structlog.get_logger("transport.slack_offers")

_HISTORY_LIMIT = 100


@dataclass(slots=True)
class OfferDm:
    """Where an offer was posted; `outcome` once resolved."""

    channel: str
    ts: str
    view: OfferView | None
    outcome: OfferOutcome | None = None


def _offer_id_of(message: Mapping[str, Any]) -> str | None:
    metadata = message.get("metadata")
    if isinstance(metadata, Mapping) and metadata.get("event_type") == OFFER_EVENT:
        payload = metadata.get("event_payload")
        offer_id = payload.get("offer_id") if isinstance(payload, Mapping) else None
        return offer_id if isinstance(offer_id, str) else None
    return None


class Offers:
    def __init__(
        self,
        web: SlackWebClient,
        *,
        room_link: Callable[[str], str] = lambda name: f"#{name}",
        keep: int = 10_000,
    ) -> None:
        self._web = web
        self._room_link = room_link
        self._keep = keep
        self._dms: dict[str, str] = {}
        self._offers: OrderedDict[str, OfferDm] = OrderedDict()
        self._urgent: deque[ResolveOffer] = deque()  # accepted: the agent needs the room link
        self._updates: deque[ResolveOffer] = deque()
        self._queued = trio.Event()
        self._busy = 0
        self._idle = trio.Event()
        self._idle.set()

    def get(self, offer_id: str) -> OfferDm | None:
        return self._offers.get(offer_id)

    async def dm_channel(self, agent_id: str) -> str:
        """The agent's DM with the app (conversations.open once, then remembered)."""
        channel = self._dms.get(agent_id)
        if channel is None:
            answer = await self._web.call("conversations.open", users=agent_id)
            channel = answer["channel"]["id"]
            assert isinstance(channel, str)
            self._dms[agent_id] = channel
        return channel

    def _remember(self, offer_id: str, dm: OfferDm) -> None:
        self._offers[offer_id] = dm
        self._offers.move_to_end(offer_id)
        while len(self._offers) > self._keep:
            self._offers.popitem(last=False)

    async def post(self, view: OfferView) -> OfferDm:
        known = self._dms.get(view.agent_id)
        answer = await self._web.post_message(known or view.agent_id, **offer_post(view).params())
        channel = answer.get("channel")
        if not isinstance(channel, str) or not channel:
            channel = known or await self.dm_channel(view.agent_id)
        self._dms.setdefault(view.agent_id, channel)
        dm = OfferDm(channel, str(answer["ts"]), view)
        self._remember(view.offer_id, dm)
        _log.info("offer_posted", offer=view.offer_id, agent=view.agent_id, channel=channel)
        return dm

    async def _find(self, agent_id: str, offer_id: str) -> OfferDm | None:
        channel = await self.dm_channel(agent_id)
        page = await self._web.call(
            "conversations.history",
            channel=channel,
            limit=_HISTORY_LIMIT,
            include_all_metadata=True,
        )
        for message in page.get("messages") or ():
            if isinstance(message, Mapping) and _offer_id_of(message) == offer_id:
                dm = OfferDm(channel, str(message.get("ts")), None)
                self._remember(offer_id, dm)
                return dm
        return None

    async def resolve(self, cmd: ResolveOffer) -> None:
        dm = self._offers.get(cmd.offer_id) or await self._find(cmd.agent_id, cmd.offer_id)
        if dm is None:
            _log.warning("offer_dm_not_found", offer=cmd.offer_id, agent=cmd.agent_id)
            return
        if dm.outcome is not None:
            _log.info("offer_already_resolved", offer=cmd.offer_id, outcome=dm.outcome)
            return
        room = self._room_link(cmd.room_name) if cmd.room_name else None
        post = offer_resolved_post(dm.view, cmd.outcome, room)
        await self._web.call(
            "chat.update", channel=dm.channel, ts=dm.ts, **post.params(update=True)
        )
        dm.outcome = cmd.outcome
        _log.info("offer_resolved", offer=cmd.offer_id, agent=cmd.agent_id, outcome=cmd.outcome)

    def resolve_soon(self, cmd: ResolveOffer) -> None:
        """Queue the DM's update for `run_updates`; returns at once."""
        (self._urgent if cmd.outcome == "accepted" else self._updates).append(cmd)
        if self._busy == 0:
            self._idle = trio.Event()
        self._busy += 1
        self._queued.set()  # wakes every idle worker; the next ones wait for a fresh event
        self._queued = trio.Event()

    async def run_updates(self, *, workers: int = 2) -> None:
        """Make the queued updates, `workers` at a time (each waits its turn in the tier)."""
        async with trio.open_nursery() as nursery:
            for _ in range(workers):
                nursery.start_soon(self._update_worker)

    async def _update_worker(self) -> None:
        while True:
            if not self._urgent and not self._updates:
                await self._queued.wait()
                continue
            cmd = self._urgent.popleft() if self._urgent else self._updates.popleft()
            try:
                await self.resolve(cmd)
            except Exception:
                _log.exception("offer_update_failed", offer=cmd.offer_id, agent=cmd.agent_id)
            finally:
                self._busy -= 1
                if self._busy == 0:
                    self._idle.set()

    async def wait_updated(self) -> None:
        """Wait until no DM update is queued or running."""
        await self._idle.wait()

    @property
    def updates_pending(self) -> int:
        return self._busy

    async def too_late(self, cmd: TellTooLate) -> None:
        channel = await self.dm_channel(cmd.agent_id)
        text = too_late_text()
        try:
            await self._web.call(
                "chat.postEphemeral", channel=channel, user=cmd.agent_id, text=text
            )
        except SlackApiError as e:
            _log.info("ephemeral_refused", agent=cmd.agent_id, error=e.error_code)
            await self._web.post_message(channel, text=text)
        _log.info("offer_click_too_late", offer=cmd.offer_id, agent=cmd.agent_id)
