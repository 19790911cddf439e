"""Live quality per served model version, from what the inference service logged on rtml.predictions."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from kafka import TopicPartition
from sklearn.metrics import average_precision_score

from services.common.events import EventError, PredictionLog, Topics, decode
from services.common.kafka import make_reader
from services.common.settings import Settings
from services.models.artifacts import load_model
from services.monitor.quality import average_precision
from services.registry import ModelRegistry, ModelVersion


@dataclass(frozen=True)
class VersionQuality:
    version: str
    rows: int
    frauds: int
    pr_auc: float | None
    recall: float | None  # share of frauds the decision flagged (review or decline)


def read_predictions(
    settings: Settings, expected: int, quiet_s: float = 3.0, timeout_s: float = 60.0
) -> list[PredictionLog]:
    """Every prediction log on the topic (no consumer group, from the beginning)."""
    consumer = make_reader(settings, "demo-quality")
    logs: list[PredictionLog] = []
    try:
        partitions = [
            TopicPartition(Topics.PREDICTIONS, p)
            for p in sorted(consumer.partitions_for_topic(Topics.PREDICTIONS) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout_s
        last_record = time.monotonic()
        while time.monotonic() < deadline:
            polled = consumer.poll(timeout_ms=300)
            for records in polled.values():
                for record in records:
                    try:
                        logs.append(decode(PredictionLog, record.value))
                    except EventError:
                        continue
                last_record = time.monotonic()
            if len(logs) >= expected and time.monotonic() - last_record > quiet_s:
                break
    finally:
        consumer.close()
    return logs


def write_served(logs: list[PredictionLog], truth: dict[str, bool], path: Path) -> Path:
    """Every served prediction with its feature vector and the simulator's truth, as Parquet:
    what a skew analysis rescores (benchmarks/demo_skew.py) once the broker is gone."""
    frame = pd.DataFrame(
        {
            "transaction_id": [log.transaction_id for log in logs],
            "user_id": [log.request.user_id for log in logs],
            "model_version": [log.model_version for log in logs],
            "fraud_probability": [log.fraud_probability for log in logs],
            "is_fraud": [truth.get(log.transaction_id) for log in logs],
            "timestamp": [log.timestamp for log in logs],
        }
    )
    features = pd.DataFrame([log.features for log in logs]).add_prefix("f_")
    pd.concat([frame, features], axis=1).to_parquet(path, index=False)
    return path


def _quality(version: str, scores: np.ndarray, flagged: np.ndarray, truth: np.ndarray) -> VersionQuality:
    frauds = int(truth.sum())
    both_classes = 0 < frauds < len(truth)
    return VersionQuality(
        version=version,
        rows=len(truth),
        frauds=frauds,
        pr_auc=float(average_precision_score(truth, scores)) if both_classes else None,
        recall=float(flagged[truth].mean()) if frauds else None,
    )


def per_version(logs: list[PredictionLog], truth: dict[str, bool], only: set[str]) -> list[VersionQuality]:
    """Quality of each version on the transactions in ``only`` (e.g. post-drift traffic)."""
    out = []
    for version in sorted({log.model_version for log in logs}):
        rows = [log for log in logs if log.model_version == version and log.transaction_id in only]
        if not rows:
            continue
        out.append(
            _quality(
                version,
                np.array([r.fraud_probability for r in rows]),
                np.array([r.decision != "approve" for r in rows]),
                np.array([truth[r.transaction_id] for r in rows]),
            )
        )
    return out


def rescore(logs: list[PredictionLog], record: ModelVersion, registry: ModelRegistry, cache_dir: Path) -> np.ndarray:
    """``record``'s scores for exactly these requests, fed the feature values that were served."""
    scorer = load_model(registry, record, cache_dir)

    def value(log: PredictionLog, name: str) -> float:
        served = log.features.get(name)
        return float(served) if served is not None else record.feature_defaults.get(name, 0.0)

    matrix = np.array([[value(log, name) for name in record.features] for log in logs], dtype=np.float32)
    return np.asarray(scorer.predict_proba(matrix), dtype=np.float64)


def rescored(
    logs: list[PredictionLog], truth: dict[str, bool], record: ModelVersion, registry: ModelRegistry, cache_dir: Path
) -> VersionQuality:
    """How ``record`` would have done on exactly these requests."""
    scores = rescore(logs, record, registry, cache_dir)
    flagged = np.array([record.thresholds.decide(float(s)) != "approve" for s in scores])
    return _quality(
        f"{record.version} (rescored)", scores, flagged, np.array([truth[log.transaction_id] for log in logs])
    )


@dataclass(frozen=True)
class SwapComparison:
    """The old and the new champion on the identical requests the new one answered after the swap.

    Only post-swap traffic is a fair test: the new model learned from what came before it.
    """

    new: VersionQuality  # as served
    old: VersionQuality  # the old champion rescored on the same feature vectors
    rescore_gap: float  # largest |new model rescored - its served score|: checks the rescoring itself
    gain_ci: tuple[float, float] | None  # 95 % paired-bootstrap interval of new minus old PR-AUC

    @property
    def rows(self) -> int:
        return self.new.rows

    @property
    def frauds(self) -> int:
        return self.new.frauds


def compare_after_swap(
    logs: list[PredictionLog],
    truth: dict[str, bool],
    old: ModelVersion,
    new: ModelVersion,
    registry: ModelRegistry,
    cache_dir: Path,
) -> SwapComparison | None:
    """None when the new champion answered nothing."""
    rows = [log for log in logs if log.model_version == new.version]
    if not rows:
        return None
    served = np.array([log.fraud_probability for log in rows])
    live = _quality(
        new.version,
        served,
        np.array([log.decision != "approve" for log in rows]),
        np.array([truth[log.transaction_id] for log in rows]),
    )
    gap = float(np.max(np.abs(rescore(rows, new, registry, cache_dir) - served)))
    old_scores = rescore(rows, old, registry, cache_dir)
    truth_rows = np.array([truth[log.transaction_id] for log in rows])
    return SwapComparison(
        new=live,
        old=rescored(rows, truth, old, registry, cache_dir),
        rescore_gap=gap,
        gain_ci=paired_gain_interval(truth_rows, served, old_scores),
    )


def _ap(scores: np.ndarray, truth: np.ndarray) -> float:
    # The monitor's average precision: equal to scikit-learn's (tests/monitor), a few times faster.
    value = average_precision(scores, truth)
    assert value is not None  # callers resample only sets holding a fraud
    return value


def paired_gain_interval(
    truth: np.ndarray, new: np.ndarray, old: np.ndarray, resamples: int = 1000, seed: int = 0
) -> tuple[float, float] | None:
    """95 % interval of PR-AUC(new) - PR-AUC(old), resampling the same rows for both models.

    Paired because both scored the identical requests: the rows' difficulty cancels out, and
    what remains is how much the difference depends on which few dozen frauds were drawn.
    """
    if not 0 < int(truth.sum()) < len(truth):
        return None
    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(resamples):
        pick = rng.integers(0, len(truth), len(truth))
        if 0 < int(truth[pick].sum()) < len(pick):
            gain = _ap(new[pick], truth[pick]) - _ap(old[pick], truth[pick])
            gains.append(gain)
    low, high = np.percentile(gains, [2.5, 97.5])
    return float(low), float(high)
