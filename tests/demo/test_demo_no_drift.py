"""The false-alarm check, as `rtml demo --fast --no-drift` runs it on the embedded stack.

The same stream length as the drift run (every one of its transactions and labels is sent and
read by the monitor), no drift injected: the monitor must ask for no retraining, and the first
model answers every request.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.demo.config import DemoConfig
from tests.demo.run import run_demo

DEFAULT = DemoConfig(data_dir=Path("unused"))  # --fast keeps the default stream and post-swap window


@pytest.mark.timeout(1200)  # one real pipeline run and the whole stream of live traffic
def test_demo_without_drift_asks_for_no_retraining(tmp_path: Path) -> None:
    summary = run_demo(tmp_path, "--no-drift", timeout_s=1200)
    assert "no false alarm" in summary["stages"] and "drift detected" not in summary["stages"]

    assert summary["monitor_requests"] == 0, (summary["monitor_request_ids"], summary["monitor_request_evidence"])
    assert summary["requests_failed"] == 0
    # The whole stream went through: as many transactions as the drift run's stream holds, minus the history.
    assert summary["live_transactions"] == DEFAULT.events - DEFAULT.history
    assert summary["requests_ok"] == summary["live_transactions"]
    assert len(summary["champions"]) == 1 and list(summary["answers_by_version"]) == summary["champions"]
    assert summary["events_ingested"] > 0 and summary["dlq"] == 0
    assert summary["feature_waits"] > 0 and summary["feature_wait_timeouts"] == 0
