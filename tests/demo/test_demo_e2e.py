"""The whole loop, end to end, as `rtml demo --fast` runs it on the embedded stack.

drift injected → exactly one training request from the monitor → pipeline run → a better
model promoted → inference answers with the new version, with zero failed scoring requests;
on the identical requests answered after the swap, the new champion ranks fraud better than
the old one would have.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.demo.config import DemoConfig
from tests.demo.run import run_demo

DEFAULT = DemoConfig(data_dir=Path("unused"))  # --fast keeps the default stream and post-swap window


@pytest.mark.timeout(1500)  # two real pipeline runs and minutes of live traffic
def test_demo_closes_the_loop(tmp_path: Path) -> None:
    summary = run_demo(tmp_path, timeout_s=1500)

    # One drift episode, one request (a request id published twice is one request).
    assert summary["monitor_requests"] == 1, (summary["monitor_request_ids"], summary["monitor_request_evidence"])
    assert summary["requests_failed"] == 0 and summary["requests_ok"] > 0
    first, newest = summary["champions"][0], summary["champions"][-1]
    assert newest != first
    assert summary["answers_by_version"].get(newest, 0) > 0  # the new champion really answered
    assert Path(summary["report"]["html"]).exists() and Path(summary["report"]["png"]).exists()
    # Old vs new on the same post-swap requests: the new champion answered them (it learned from what came
    # before), the old one is rescored on the feature vectors that were served.
    swap = summary["after_swap"]
    assert swap["new"]["version"] == newest and swap["old_rescored"]["version"] == f"{first} (rescored)"
    assert swap["rows"] >= DEFAULT.after_swap and swap["frauds"] >= DEFAULT.after_swap_frauds
    assert swap["rescore_gap"] < 1e-4  # rescoring reproduces served scores (float32 batches): like for like
    assert swap["new"]["pr_auc"] > swap["old_rescored"]["pr_auc"], swap
    # ... and not by the luck of which few dozen frauds came: the paired-bootstrap interval excludes 0.
    assert swap["pr_auc_gain_ci"][0] > 0, swap
    # Every stream event the demo sent reached the feature service, and none was dead-lettered.
    assert summary["events_ingested"] > 0 and summary["dlq"] == 0
    # Users' repeat payments waited for their predecessor to be written online, and it always was in time.
    assert summary["feature_waits"] > 0 and summary["feature_wait_timeouts"] == 0
