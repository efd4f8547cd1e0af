"""Fixtures of the end-to-end runs: the clock they share with the daemon and the emulator.

`e2e_clock` is trio's `MockClock` with a small autojump threshold. Both servers run in the
test's trio run, so every timer of both (offer deadlines, presence polls, rate-tier refills,
Socket Mode redelivery, reconnect backoff) runs on virtual time and tests assert exact virtual
times, while the traffic between them is real loopback I/O. The threshold is not zero because
the journal writes in worker threads: trio counts a task waiting for its thread as blocked, and
a zero threshold would jump the clock (to the chat API's durability deadline, say) while a
write is still on its way. Virtual time only moves once everything has been idle this long.
"""

from __future__ import annotations

import pytest
from trio.testing import MockClock

AUTOJUMP_THRESHOLD_S = 0.02


@pytest.fixture
def e2e_clock() -> MockClock:
    return MockClock(autojump_threshold=AUTOJUMP_THRESHOLD_S)
