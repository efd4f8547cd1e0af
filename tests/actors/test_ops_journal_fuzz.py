"""Random corruptions of a real journal: startup recovers what it can and says what it lost, or
refuses with a journal/restore error (the daemon then exits 2 with one line); it never crashes
otherwise, and never loses an acknowledged message without reporting a loss, with one exception
no append-only journal can detect: a file cut exactly between two records, or the newest segment
deleted, looks like a journal that ended there. Then at most the newest messages are missing:
what is recovered is always a prefix, in acknowledgment order, never a message with a hole
before it.

The journal is written once by a real domain (customers' messages acknowledged through the
facade, a snapshot half way, more messages after it), then each example copies its files with one
to three corruptions (bit flips, truncations, overwritten or zeroed ranges, appended garbage, a
deleted file) and starts from them as the daemon does: `JournalActor.run`, `rebuild`,
`Domain(recovered=...)`. CI runs a modest count; `--run-slow` runs `TAKEOVER_FUZZ_EXAMPLES`
(default 300) and docs/operations.md records the last long run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from actors.domain import Domain
from actors.journal import JournalActor, JournalError, Recovery
from actors.journal_sink import JournalSink
from actors.ports import PostOffer, PresenceChanged
from actors.restore import RestoreError, rebuild
from actors.settings import BotSettings, RoutingSettings
from tests.actors.harness import FakeSlack, ScriptedBot

LONG_RUN = int(os.environ.get("TAKEOVER_FUZZ_EXAMPLES", "300"))
ROUTING = RoutingSettings(agents=("U01",))

Acked = list[tuple[str, int, str]]  # (session, seq, text) in acknowledgment order
_TEMPLATE: dict[str, Any] = {}  # built once per process: the journal files and what was acked


def _domain(slack: FakeSlack, sink: Any, state: Any) -> Domain:
    return Domain(
        routing=ROUTING,
        bot_settings=BotSettings(),
        bot=ScriptedBot(),
        slack=slack.send,
        sink=sink,
        agents=ROUTING.agents,
        recovered=state,
    )


async def _write_template(directory: Path) -> Acked:
    acked: Acked = []
    journal = JournalActor(directory, fsync="off")
    slack = FakeSlack()
    async with trio.open_nursery() as nursery:
        recovery: Recovery = await nursery.start(journal.run)
        sink = JournalSink(journal, rebuild(recovery.snapshot, recovery.records))
        domain = _domain(slack, sink, sink.state)
        await nursery.start(slack.run)
        await nursery.start(domain.run)
        sessions = [(await domain.open_session(None, f"C{n}", None)).session_id for n in range(3)]
        for round_ in range(4):
            for session in sessions:
                text = f"{session} says {round_} \u00e9\U0001f642"
                acked.append((session, await domain.customer_says(session, text), text))
            if round_ == 1:
                await sink.snapshot()
        await domain.deliver(PresenceChanged("U01", True))
        await domain.customer_says(sessions[0], "a human please")  # an offer pending at the stop
        await slack.next(PostOffer)
        nursery.cancel_scope.cancel()
    return acked


async def _template(base: Path) -> tuple[dict[str, bytes], Acked]:
    if not _TEMPLATE:
        directory = base / "template"
        acked = await _write_template(directory)
        files = {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}
        _TEMPLATE.update(files=files, acked=acked)
    return _TEMPLATE["files"], _TEMPLATE["acked"]


corruptions = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10),  # which file (modulo the count)
        st.sampled_from(["flip", "truncate", "overwrite", "zero", "append", "delete"]),
        st.floats(min_value=0, max_value=1),  # where, as a share of the file
        st.integers(min_value=1, max_value=64),  # how many bytes
        st.binary(min_size=1, max_size=64),
    ),
    min_size=1,
    max_size=3,
)


def _corrupt(
    files: dict[str, bytes], damage: list[tuple[int, str, float, int, bytes]]
) -> dict[str, bytes]:
    out = dict(files)
    for which, kind, where, size, noise in damage:
        names = sorted(out)
        if not names:
            break
        name = names[which % len(names)]
        data = bytearray(out[name])
        at = min(int(where * len(data)), max(0, len(data) - 1))
        match kind:
            case "flip" if data:
                data[at] ^= 1 << (size % 8)
            case "truncate":
                del data[at:]
            case "overwrite":
                data[at : at + len(noise)] = noise
            case "zero":
                data[at : at + size] = bytes(len(data[at : at + size]))
            case "append":
                data += noise
            case "delete":
                del out[name]
                continue
        out[name] = bytes(data)
    return out


async def _start_from(directory: Path, acked: Acked, *, cut: bool) -> str:
    """Start as the daemon does; returns how it went: refused, lossless or lossy. `cut`: the
    damage may have cut or deleted a file (a clean cut cannot be told from an end)."""
    journal = JournalActor(directory, fsync="off")
    slack = FakeSlack()
    refused = lossy = False
    try:
        async with trio.open_nursery() as nursery:
            recovery: Recovery = await nursery.start(journal.run)
            state = rebuild(recovery.snapshot, recovery.records)
            domain = _domain(slack, JournalSink(journal, state), state)
            await nursery.start(slack.run)
            await nursery.start(domain.run)  # resumes what the journal shows unfinished
            report = recovery.report
            lossy = bool(report.torn_tail or report.dropped or report.lost_lsns)
            present = []
            for session, seq, text in acked:
                try:
                    events = domain.events_after(session, seq - 1)
                except Exception:  # the session itself is not in what was recovered
                    present.append(False)
                    continue
                found = [e.text for e in events if e.seq == seq]
                assert found in ([], [text]), (seq, found, text)  # never another text
                present.append(found == [text])
            if not lossy:
                kept = present.index(False) if False in present else len(present)
                assert all(present[:kept]) and not any(present[kept:]), present  # a prefix
                assert cut or kept == len(acked), "lost without a report or a cut"
            nursery.cancel_scope.cancel()
    except* (JournalError, RestoreError):
        refused = True
    return "refused" if refused else "lossy" if lossy else "lossless"


async def _example(tmp: Path, damage: list[tuple[int, str, float, int, bytes]]) -> str:
    files, acked = await _template(tmp)
    directory = tmp / "damaged"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    for name, data in _corrupt(files, damage).items():
        (directory / name).write_bytes(data)
    cut = any(kind in ("truncate", "delete") for _, kind, *_ in damage)
    return await _start_from(directory, acked, cut=cut)


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


async def test_the_untouched_template_recovers_every_acknowledged_message(tmp_path: Path) -> None:
    assert await _example(tmp_path, []) == "lossless"
    files, acked = await _template(tmp_path)
    assert any(name.startswith("snapshot") for name in files) and len(acked) == 12


@fuzz(150)
@given(damage=corruptions)
async def test_random_corruptions_are_recovered_or_refused(
    damage: list[tuple[int, str, float, int, bytes]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    event(await _example(tmp_path_factory.mktemp("journal"), damage))


@pytest.mark.slow
@fuzz(LONG_RUN)
@given(damage=corruptions)
async def test_long_journal_corruption_run(
    damage: list[tuple[int, str, float, int, bytes]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    event(await _example(tmp_path_factory.mktemp("journal"), damage))
