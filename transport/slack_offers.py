"""The offer DMs: posting them, resolving them in place, and telling late clickers.

Owns `Offers`:
- `post(view)`: conversations.open with the agent (the DM channel is remembered per agent),
  then chat.postMessage of the offer view; the channel and ts are kept per offer id;
- `resolve(cmd)`: chat.update of that message with its one outcome (no buttons left). An offer
  this process did not post (a restart in between) is found again in the DM's recent history by
  the offer id carried in the message metadata;
- `too_late(cmd)`: chat.postEphemeral in the DM ("nothing changed"), or a plain DM if that fails.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

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
        channel = await self.dm_channel(view.agent_id)
        answer = await self._web.post_message(channel, **offer_post(view).params())
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
