"""The false-alarm check, as `rtml demo --fast --no-drift` runs it on the embedded stack.

No drift injected over as many transactions as the drift run sends before the monitor asks for
retraining (its request came 5,300-5,400 transactions after the drift at 13,000, i.e. at ~18,400,
in the runs of 2026-12-06), plus a margin: every transaction and label is sent and read by the
monitor, which must ask for no retraining, and the first model answers every request. The stream
stops there rather than at the drift run's full 26,000 to keep the suite within its 15 minutes
(the stream after ~18,400 is where the drift run's new champion answers, not the first model);
`rtml demo --no-drift` runs the full default stream.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.demo.config import DemoConfig
from tests.demo.run import run_demo

DEFAULT = DemoConfig(data_dir=Path("unused"))  # --fast keeps the default history
EVENTS = 19_000  # the drift run's stream up to its retraining request, and ~600 transactions more


@pytest.mark.timeout(1200)  # one real pipeline run and the whole stream of live traffic
def test_demo_without_drift_asks_for_no_retraining(tmp_path: Path) -> None:
    summary = run_demo(tmp_path, "--no-drift", "--events", str(EVENTS), timeout_s=1200)
    assert "no false alarm" in summary["stages"] and "drift detected" not in summary["stages"]

    assert summary["monitor_requests"] == 0, (summary["monitor_request_ids"], summary["monitor_request_evidence"])
    assert summary["requests_failed"] == 0
    # The whole stream went through: every transaction after the history.
    assert summary["live_transactions"] == EVENTS - DEFAULT.history
    assert summary["requests_ok"] == summary["live_transactions"]
    assert len(summary["champions"]) == 1 and list(summary["answers_by_version"]) == summary["champions"]
    assert summary["events_ingested"] > 0 and summary["dlq"] == 0
    assert summary["feature_waits"] > 0 and summary["feature_wait_timeouts"] == 0
