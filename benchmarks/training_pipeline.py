"""Benchmark: `rtml-training` with kfp.local on a few hundred thousand simulated transactions.

Run: python -m benchmarks.training_pipeline [EVENTS]; prints wall time and the registered models' metrics.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from pipelines.runner import run_local
from services.common.broker import EmbeddedBroker
from services.common.kafka import ensure_topics
from services.common.settings import load_settings
from services.registry import ModelRegistry
from services.simulator import SimulatorConfig, write_parquet


def main(events: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="rtml-bench-training-"))
    started = time.perf_counter()
    transactions, labels = write_parquet(SimulatorConfig(events=events, seed=11), work / "sim")
    simulated = time.perf_counter() - started
    with EmbeddedBroker() as broker:
        settings = load_settings(data_dir=work / "data", kafka_bootstrap=broker.bootstrap)
        ensure_topics(settings)
        started = time.perf_counter()
        outcome = run_local(settings, {"transactions_path": str(transactions), "labels_path": str(labels)})
        elapsed = time.perf_counter() - started
    versions = ModelRegistry(settings.registry_uri).versions("fraud")
    print(json.dumps({
        "events": events, "simulate_s": round(simulated, 1), "pipeline_s": round(elapsed, 1), "outcome": outcome,
        "models": {v.version: {"kind": v.kind, "rows": v.data_window.rows, **{k: round(m, 4) for k, m in v.metrics.items()}}
                   for v in versions},
    }, indent=1))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300_000)
