"""AgentActor: one per agent of the pool; keeps the agent's stats and Slack profile.

Accepts `AgentMsg`: the offer and takeover facts the dispatcher forwards (`OfferStarted`,
`OfferFinished`, `TakeoverFinished`), `AgentResponded` from the session, and the profile cache
(`GetProfile`, `ProfileFetched`). It never waits on another actor, so anyone may wait on it.
Presence, load and idle time belong to the dispatcher's routing view (`actors.routing`).
"""

from __future__ import annotations

from typing import assert_never

from actors.messages import (
    AgentMsg,
    AgentResponded,
    GetProfile,
    OfferFinished,
    OfferStarted,
    ProfileFetched,
    TakeoverFinished,
)
from actors.ports import AgentProfile
from actors.routing import AgentView, RoutingRules, is_available
from actors.runtime import Actor
from actors.stats import AgentStats, AgentTally, median, percentile

__all__ = ["AgentActor"]


class AgentActor(Actor[AgentMsg]):
    __slots__ = ("agent_id", "profile", "tally")

    def __init__(self, agent_id: str, capacity: int = 1024) -> None:
        super().__init__(capacity)
        self.agent_id = agent_id
        self.profile: AgentProfile | None = None
        self.tally = AgentTally()

    async def handle(self, message: AgentMsg) -> None:
        tally = self.tally
        match message:
            case OfferStarted():
                tally.offered += 1
            case OfferFinished(outcome=outcome, after_s=after_s):
                tally.count(outcome, after_s)
            case TakeoverFinished(duration_s=duration_s):
                tally.ended += 1
                tally.takeover.append(duration_s)
            case AgentResponded(after_s=after_s):
                tally.first_response.append(after_s)
            case GetProfile(reply):
                reply.send(self.profile)
            case ProfileFetched(profile):
                self.profile = profile
            case _:
                assert_never(message)

    def statistics(self, view: AgentView, rules: RoutingRules) -> AgentStats:
        t = self.tally
        name = self.profile.display_name if self.profile else self.agent_id
        return AgentStats(
            id=self.agent_id,
            name=name,
            available=is_available(view, rules),
            active=view.active,
            load=view.load,
            offered=t.offered,
            accepted=t.accepted,
            ignored=t.ignored,
            missed=t.missed,
            withdrawn=t.withdrawn,
            pending=t.pending,
            ended=t.ended,
            time_to_accept_median_s=median(t.to_accept),
            time_to_accept_p90_s=percentile(t.to_accept, 90),
            first_response_median_s=median(t.first_response),
            takeover_median_s=median(t.takeover),
        )
