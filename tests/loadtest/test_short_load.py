"""A short load in CI: `python run.py loadtest` with small numbers, end to end.

The emulator and the daemon run in their own processes as in a real load test; simulated
customers and agents go through the customer API and Slack. The run must lose and duplicate no
message, and every escalation must reach an outcome; the JSON report and the PNG are written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HARD_DEADLINE_S = 240

SHORT_LOAD = [
    "--duration", "4",
    "--drain", "60",
    "--seed", "7",
    "--agents", "4",
    "--customers", "8",
    "--arrival-rate", "3",
    "--messages", "3",
    "--think", "0.1", "0.3",
    "--leave-share", "0.25",
    "--accept-share", "0.7",
    "--ignore-share", "0.15",
    "--answer-delay", "0.1", "0.6",
    "--reply-delay", "0.05", "0.2",
    "--end-delay", "0.1", "0.3",
    "--offer-timeout", "2",
    "--max-tries", "3",
    "--no-progress",
]  # fmt: skip


def test_short_load_loses_nothing_and_every_escalation_ends(tmp_path: Path) -> None:
    report, plot = tmp_path / "report.json", tmp_path / "plot.png"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "run.py"),
            "--settings",
            str(ROOT / "settings.yaml"),
            "loadtest",
            *SHORT_LOAD,
            "--json",
            str(report),
            "--png",
            str(plot),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=HARD_DEADLINE_S,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(report.read_text())
    assert data["ok"] is True
    assert all(data["checks"].values()), data["checks"]
    audit = data["audit"]
    assert audit["lost"] == 0 and audit["duplicated"] == 0
    # the run really relayed messages both ways and made escalations
    assert audit["customer_to_room"]["expected"] > 0
    assert audit["customer_to_room"]["found"] == audit["customer_to_room"]["expected"]
    assert audit["agent_to_customer"]["found"] == audit["agent_to_customer"]["expected"] > 0
    assert data["escalations"]["started"] > 0
    assert data["escalations"]["without_outcome"] == []
    assert data["counts"]["offers"] >= data["counts"]["agent_joined"] > 0
    assert data["latency"]["customer_to_room"]["count"] > 0
    assert data["latency"]["escalation_to_offer"]["p99_s"] is not None
    assert data["processes"]["daemon"]["peak_rss_mib"] > 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "no message lost" in done.stdout
