"""Monitor state throughput and report rendering time (``python -m benchmarks.monitor_throughput``).

Feeds decoded prediction logs and labels straight into MonitorState (no broker: this
measures the monitor's own work per event), refreshing every 500 events as a batch would,
then renders the report PNG + HTML once.
"""

from __future__ import annotations

import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.common.events import PredictionLog, decode
from services.monitor.config import MonitorConfig
from services.monitor.drift import ReferenceProfile
from services.monitor.report import write_snapshot
from services.monitor.state import MonitorState
from tests.monitor.traffic import payments, prediction, reference_for

EVENTS = 30_000


def main() -> None:
    stream = payments(EVENTS + 3000)
    profile = ReferenceProfile.from_stats("v0001", reference_for([p.transaction for p in stream[:3000]]))
    state = MonitorState(MonitorConfig(), {"v0001": profile}.get)
    start = datetime.now(UTC)
    raw = [
        prediction(p.transaction, "v0001", at=start + timedelta(milliseconds=20 * i)).to_json()
        for i, p in enumerate(stream[3000:])
    ]
    labels = [p.label for p in stream[3000:] if p.label is not None]
    began = time.perf_counter()
    for i, body in enumerate(raw):
        state.observe_prediction(decode(PredictionLog, body))
        if i % 500 == 499:
            state.refresh()
            state.due_request(start)
    fed = time.perf_counter() - began
    began = time.perf_counter()
    for label in labels:
        state.observe_label(label)
    state.refresh()
    labelled = time.perf_counter() - began
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        paths = write_snapshot(state.report_data(), Path(out))
        png_kib = paths.png.stat().st_size / 1024
    rendered = time.perf_counter() - began
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"predictions: {len(raw)} in {fed:.2f} s ({len(raw) / fed:,.0f}/s incl. JSON decode)")
    print(f"labels: {len(labels)} in {labelled:.2f} s ({len(labels) / labelled:,.0f}/s)")
    print(
        f"report snapshot (PNG {png_kib:.0f} KiB + HTML): {rendered:.2f} s; timeline points {len(state.timeline.points)}"
    )
    print(f"peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
