"""What each component of ``rtml-training`` does, as plain functions over files.

The KFP components in ``pipelines.training`` are thin wrappers around these, so the same
code runs in the training image on a cluster, under ``kfp.local`` and in tests.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.validation import LABEL, SPLIT, DataValidationError, check_snapshot
from services.common.settings import Settings, get_settings, load_settings
from services.features.request import FEATURE_DEFAULTS, MODEL_FEATURES, request_features_frame

# Each KFP step is a process of its own that imports this module: a step imports the heavy
# libraries (Feast 3.3 s, scikit-learn 1.1 s, torch 2.3 s here) inside its function, so it pays
# only for what it uses. Importing all of them up front cost every step ~5 s, a third of a run.
if TYPE_CHECKING:
    from services.models.artifacts import Scorer
    from services.models.evaluation import Evaluation

log = logging.getLogger(__name__)

EVALUATION_FILE = "evaluation.json"
IMPORTANCE_ROWS = 4000
IMPORTANCE_REPEATS = 2


@dataclass(frozen=True)
class StoreParams:
    """Where the run reads and writes; empty values fall back to the RTML_* environment."""

    kafka_bootstrap: str = ""
    registry_uri: str = ""
    s3_endpoint: str = ""
    data_dir: str = ""
    feast_repo: str = ""
    feast_store_yaml: str = ""
    feast_data_uri: str = ""

    def settings(self) -> Settings:
        overrides: dict[str, object] = {
            "kafka_bootstrap": self.kafka_bootstrap,
            "model_registry_uri": self.registry_uri,
            "s3_endpoint": self.s3_endpoint,
            "data_dir": self.data_dir,
            "feast_repo": self.feast_repo,
            "feast_store_yaml": self.feast_store_yaml,
            "feast_data_uri": self.feast_data_uri,
        }
        given = {k: v for k, v in overrides.items() if v}
        return load_settings(**given) if given else get_settings()


# ---------------------------------------------------------------- dataset


def build_dataset(
    store: StoreParams,
    *,
    transactions_path: str,
    labels_path: str,
    window_start: str,
    window_end: str,
    dataset_version: str,
    backfill_features: bool,
    out_path: Path,
) -> dict[str, Any]:
    from pipelines.dataset import Snapshot, build_snapshot, load_snapshot

    settings = store.settings()
    snapshot: Snapshot
    if dataset_version:
        snapshot = load_snapshot(dataset_version, settings.registry_uri, settings.s3_endpoint)
    else:
        if not transactions_path or not labels_path:
            raise ValueError("transactions_path and labels_path are required unless dataset_version is given")
        transactions, labels = pd.read_parquet(transactions_path), pd.read_parquet(labels_path)
        try:
            snapshot = build_snapshot(
                settings,
                transactions,
                labels,
                window_start=window_start,
                window_end=window_end,
                backfill_first=backfill_features,
            )
        except DataValidationError as exc:
            # Bad data (sources whose schema drifted) is not mended by reading it again: the problems
            # go to validate-data to fail the run there, instead of failing this retried step.
            pd.DataFrame().to_parquet(out_path, index=False)
            return {"dataset_hash": "", "dataset_uri": "", "rows": 0, "start": window_start, "end": window_end,
                    "source_problems": exc.problems}
    snapshot.frame.to_parquet(out_path, index=False)
    times = pd.to_datetime(snapshot.frame["timestamp"], utc=True) if len(snapshot.frame) else pd.Series([], dtype=object)
    return {
        "dataset_hash": snapshot.dataset_hash,
        "dataset_uri": snapshot.uri,
        "rows": len(snapshot.frame),
        "start": times.min().isoformat() if len(times) else window_start,
        "end": times.max().isoformat() if len(times) else window_end,
    }


def validate_dataset(
    snapshot_path: Path,
    *,
    min_rows: int,
    max_null_rate: float,
    window_start: str,
    window_end: str,
    source_problems: list[str] | None = None,
) -> dict[str, float]:
    if source_problems:
        raise DataValidationError(source_problems)
    frame = pd.read_parquet(snapshot_path)
    return check_snapshot(
        frame, min_rows=min_rows, max_null_rate=max_null_rate, window_start=window_start, window_end=window_end
    )


def featurize(snapshot_path: Path, outputs: dict[str, Path]) -> dict[str, int]:
    """Model inputs per split, built by the same function the inference service calls."""
    frame = pd.read_parquet(snapshot_path)
    vectors = request_features_frame(frame, frame)
    table = pd.concat([frame[["transaction_id", "timestamp", LABEL]], vectors], axis=1)
    table[LABEL] = table[LABEL].astype(np.int64)
    counts = {}
    for split, path in outputs.items():
        part = table[frame[SPLIT] == split].reset_index(drop=True)
        part.to_parquet(path, index=False)
        counts[split] = len(part)
    return counts


def matrix(path: Path) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.read_parquet(path)
    return frame[MODEL_FEATURES].to_numpy(dtype=np.float32), frame[LABEL].to_numpy(dtype=np.int64)


# ---------------------------------------------------------------- training


def train_sklearn(train_path: Path, model_dir: Path, seed: int) -> dict[str, Any]:
    from services.models.artifacts import save_scorer
    from services.models.baseline import train_baseline

    x, y = matrix(train_path)
    scorer = train_baseline(x, y, seed)
    save_scorer(scorer, model_dir)
    return {"kind": scorer.kind, "iterations": int(scorer.estimator.n_iter_)}


def train_torch(train_path: Path, validation_path: Path, model_dir: Path, seed: int, max_epochs: int) -> dict[str, Any]:
    from services.models.artifacts import save_scorer
    from services.models.neural import MLPTraining, train_mlp

    x, y = matrix(train_path)
    vx, vy = matrix(validation_path)
    scorer, history = train_mlp(x, y, vx, vy, seed, MLPTraining(max_epochs=max_epochs))
    save_scorer(scorer, model_dir)
    return {"kind": scorer.kind, "epochs": history.epochs, "best_epoch": history.best_epoch}


# ---------------------------------------------------------------- evaluation


def permutation_importance(scorer: Scorer, x: np.ndarray, y: np.ndarray, seed: int) -> dict[str, float]:
    """Drop in PR-AUC when one feature is shuffled, on a sample of the test set.

    Written out because sklearn's version insists on an estimator with ``fit``; a loaded
    artifact only scores."""
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(seed)
    rows = rng.choice(len(x), size=min(IMPORTANCE_ROWS, len(x)), replace=False)
    sample, truth = x[rows], y[rows]
    if len(np.unique(truth)) < 2:
        return dict.fromkeys(MODEL_FEATURES, 0.0)
    baseline = average_precision_score(truth, scorer.predict_proba(sample))
    importance = {}
    for i, name in enumerate(MODEL_FEATURES):
        drops = []
        for _ in range(IMPORTANCE_REPEATS):
            shuffled = sample.copy()
            shuffled[:, i] = rng.permutation(shuffled[:, i])
            drops.append(baseline - average_precision_score(truth, scorer.predict_proba(shuffled)))
        importance[name] = float(np.mean(drops))
    return importance


def evaluate_model(
    kind: str, model_dir: Path, train_path: Path, validation_path: Path, test_path: Path, seed: int
) -> tuple[Evaluation, dict[str, Any], np.ndarray, dict[str, float]]:
    """Test metrics, validation-chosen thresholds and reference statistics for one candidate."""
    from services.models.artifacts import load_scorer
    from services.models.evaluation import evaluate
    from services.models.reference import reference_stats
    from services.models.thresholds import choose_thresholds

    scorer = load_scorer(model_dir, kind)
    x, y = matrix(test_path)
    evaluation = evaluate(scorer, x, y)
    vx, vy = matrix(validation_path)
    validation_scores = scorer.predict_proba(vx)
    thresholds = choose_thresholds(vy, validation_scores)
    tx, _ = matrix(train_path)
    importance = permutation_importance(scorer, x, y, seed)
    summary = {
        "kind": kind,
        "metrics": evaluation.metrics,
        "thresholds": thresholds.model_dump(),
        "reference_stats": reference_stats(tx, MODEL_FEATURES, validation_scores),
        "reliability": evaluation.reliability,
        "importance": importance,
    }
    return evaluation, summary, y, importance


# ---------------------------------------------------------------- gate


def gate_and_register(
    store: StoreParams,
    *,
    candidates: list[tuple[Path, Path]],  # (model dir, evaluation dir) per candidate
    test_path: Path,
    dataset: dict[str, Any],
    margin: float,
    latency_budget_ms: float,
    run_id: str,
    work_dir: Path,
) -> dict[str, Any]:
    from services.models.release import Candidate, release
    from services.registry import ModelRegistry, Thresholds
    from services.registry.schema import DataWindow

    settings = store.settings()
    registry = ModelRegistry(settings.registry_uri, settings.s3_endpoint)
    loaded = []
    for model_dir, eval_dir in candidates:
        summary = json.loads((eval_dir / EVALUATION_FILE).read_text())
        loaded.append(
            Candidate(
                kind=summary["kind"],
                artifact_dir=model_dir,
                metrics=summary["metrics"],
                thresholds=Thresholds(**summary["thresholds"]),
                reference_stats=summary["reference_stats"],
                extra={"feature_importance": summary["importance"], "reliability": summary["reliability"]},
            )
        )
    window = DataWindow(
        start=dataset.get("start") or None,
        end=dataset.get("end") or None,
        rows=int(dataset.get("rows", 0)),
        dataset_hash=str(dataset.get("dataset_hash", "")),
        dataset_uri=str(dataset.get("dataset_uri", "")),
    )
    outcome = release(
        registry=registry,
        settings=settings,
        candidates=loaded,
        test=pd.read_parquet(test_path),
        label=LABEL,
        features=list(MODEL_FEATURES),
        feature_defaults=dict(FEATURE_DEFAULTS),
        window=window,
        margin=margin,
        latency_budget_ms=latency_budget_ms,
        run_id=run_id,
        cache_dir=work_dir / "champion-cache",
    )
    return outcome.summary()
