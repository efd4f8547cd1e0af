"""What the simulated customers and agents of one run share.

Owns `RunContext`: the profile, the recorder, the HTTP clients of the daemon's customer API and of
the emulator, the conversations by customer number, the send times of every tokened message (for
latencies measured where the message arrives), and the run's clock (trio seconds since start).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import trio

from loadtest.http import JsonHttp
from loadtest.ledger import Conversation
from loadtest.profile import Profile
from loadtest.recorder import Recorder

__all__ = ["RunContext"]


@dataclass(slots=True, kw_only=True)
class RunContext:
    profile: Profile
    recorder: Recorder
    chat: JsonHttp
    emulator: JsonHttp
    chat_url: str
    emulator_url: str
    run_id: str
    rng: random.Random
    started_at: float = field(default_factory=trio.current_time)
    conversations: dict[int, Conversation] = field(default_factory=dict)
    # token -> run time it was sent (set before the request leaves)
    sent_at: dict[str, float] = field(default_factory=dict)
    # tokens already seen where they were going (the first sighting gives the latency)
    arrived: set[str] = field(default_factory=set)
    # customer number -> run time an agent clicked Accept for them
    accept_clicked_at: dict[int, float] = field(default_factory=dict)
    active_customers: int = 0
    phase: str = "starting"

    def now(self) -> float:
        return trio.current_time() - self.started_at

    @property
    def first_takeover_message(self) -> int:
        """Customer messages are numbered from 1: the bot questions, then the hand-off, then
        the takeover's messages."""
        return self.profile.customers.bot_messages + 2

    @property
    def last_takeover_message(self) -> int:
        """The customer's last message number (no last one with `customers.until_end`)."""
        if self.profile.customers.until_end:
            return 1 << 62
        return self.first_takeover_message + self.profile.customers.messages - 1

    def arrive(self, token: str, metric: str) -> bool:
        """A tokened message reached its destination; records its latency the first time.
        Returns False for a second sighting (a duplicate on the live stream)."""
        now = self.now()
        if token in self.arrived:
            self.recorder.error(f"live_duplicate:{metric}", now)
            return False
        self.arrived.add(token)
        sent = self.sent_at.get(token)
        if sent is not None:
            self.recorder.record(metric, now - sent, now)
        return True
