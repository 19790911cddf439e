"""Figures for docs/benchmarks.md (batch scoring, edge export, explanations) on a trained data dir.

    RTML_DATA_DIR=DIR python benchmarks/batch_edge.py TRANSACTIONS.parquet

DIR must hold a registry trained by `rtml pipeline run --local` on TRANSACTIONS (simulator output).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from services.batch import score_file
from services.common.settings import get_settings
from services.inference.explanations import explanation
from services.inference.scoring import LoadedModel, Scored, score_batch
from services.models.artifacts import load_model
from services.models.edge import export_edge
from services.models.edge_report import compare, holdout_inputs
from services.registry import ModelRegistry


def main(transactions_path: str) -> None:
    settings = get_settings()
    registry = ModelRegistry(settings.registry_uri)
    work = Path(tempfile.mkdtemp(prefix="rtml-bench-"))
    figures: dict[str, object] = {}

    table = pd.read_parquet(transactions_path).drop(columns=["is_fraud", "pattern"], errors="ignore")
    table.to_parquet(work / "in.parquet", index=False)
    start = time.perf_counter()
    result = score_file(settings, str(work / "in.parquet"), str(work / "out.parquet"))
    seconds = time.perf_counter() - start
    figures["batch"] = {"rows": result.rows, "seconds": round(seconds, 2), "rows_per_s": round(result.rows / seconds),
                        "model_version": result.model_version}

    torch_record = next(v for v in registry.versions("fraud") if v.kind == "torch")
    scorer = load_model(registry, torch_record, work / "cache")
    exported = export_edge(torch_record, scorer, work / "cache" / "fraud" / torch_record.version, work / "edge")
    x, y = holdout_inputs(torch_record, settings.registry_uri)
    figures["edge"] = {**exported.summary(), **compare(torch_record, scorer, work / "edge", x, y)}

    for record in registry.versions("fraud"):
        model = LoadedModel(record, load_model(registry, record, work / "cache"))
        probe = score_batch(model, [_probe()], [{}])[0]
        timings = []
        for row in x[:200]:
            features = dict(zip(record.features, map(float, row), strict=True))
            scored = Scored(probe.transaction, features, [], 0.0, "approve", record.version, model)
            start = time.perf_counter()
            explanation(scored)
            timings.append((time.perf_counter() - start) * 1000)
        figures[f"explain_{record.kind}_ms"] = {"p50": round(float(np.percentile(timings, 50)), 2),
                                                "p95": round(float(np.percentile(timings, 95)), 2)}
    print(json.dumps(figures, indent=2))


def _probe():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from services.common.events import Transaction

    return Transaction(transaction_id="bench", user_id="bench", merchant_id="bench", amount=10.0, currency="EUR",
                       country="DE", channel="web", timestamp=datetime.now(UTC))


if __name__ == "__main__":
    main(sys.argv[1])
