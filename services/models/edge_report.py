"""Edge vs full model on the test split of the snapshot the version was trained on."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from services.models.artifacts import Scorer
from services.models.edge import SCORER_FILE, single_row_latency_us
from services.registry import ModelVersion

LATENCY_ROWS = 500


def holdout_inputs(record: ModelVersion, registry_uri: str, s3_endpoint: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Model inputs and labels of the record's test split, rebuilt from its dataset snapshot."""
    from pipelines.dataset import load_snapshot
    from pipelines.validation import LABEL, SPLIT
    from services.features.request import request_features_frame

    if not record.data_window.dataset_hash:
        raise ValueError(f"{record.name} {record.version} records no dataset snapshot to test on")
    frame = load_snapshot(record.data_window.dataset_hash, registry_uri, s3_endpoint).frame
    test = frame[frame[SPLIT] == "test"].reset_index(drop=True)
    vectors = request_features_frame(test, test)
    return vectors[record.features].to_numpy(dtype=np.float32), test[LABEL].astype(int).to_numpy()


def load_edge_scorer(directory: Path) -> Any:
    """The exported ``score_edge.py`` imported from ``directory`` (exactly what a device runs)."""
    spec = importlib.util.spec_from_file_location("rtml_score_edge", directory / SCORER_FILE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {directory / SCORER_FILE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.EdgeScorer(directory)


def compare(record: ModelVersion, full: Scorer, edge_dir: Path, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    edge = load_edge_scorer(edge_dir)
    full_scores = full.predict_proba(x)
    edge_scores = edge.predict_matrix(x)
    rows = [dict(zip(record.features, map(float, r), strict=True)) for r in x[:LATENCY_ROWS]]

    def full_single(row: dict[str, float]) -> float:
        return float(full.predict_proba(np.asarray([[row[f] for f in record.features]], dtype=np.float32))[0])

    full_pr, edge_pr = float(average_precision_score(y, full_scores)), float(average_precision_score(y, edge_scores))
    return {
        "test_rows": len(y),
        "pr_auc_full": full_pr,
        "pr_auc_edge": edge_pr,
        "pr_auc_loss": full_pr - edge_pr,
        "max_abs_probability_diff": float(np.max(np.abs(full_scores - edge_scores))),
        "single_row_latency_full_us": single_row_latency_us(full_single, rows),
        "single_row_latency_edge_us": single_row_latency_us(edge.predict, rows),
    }
