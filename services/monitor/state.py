"""Everything the monitor knows, updated event by event: windows per model version, the label
join, the request ledger and the timeline. Thread-safe: Kafka handling writes, HTTP reads."""

from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from services.common.events import Label, ModelEvent, PredictionLog, TrainingRequest
from services.monitor.bar import QualityBar
from services.monitor.config import MonitorConfig
from services.monitor.drift import DriftReading, DriftWindow
from services.monitor.ledger import REQUESTED_BY, RequestLedger
from services.monitor.quality import FLAGGING_DECISIONS, LabelJoin, Outcome, QualityReading, QualityWindow, Scored
from services.monitor.references import HeldOutSource, ReferenceSource, no_held_out
from services.monitor.timeline import Point, Promotion, Timeline

log = logging.getLogger(__name__)

# Windows are kept for the few most recent versions: the champion and whatever it replaced mid-swap.
MAX_TRACKED_VERSIONS = 4


@dataclass
class VersionSeen:
    first_seen: datetime
    last_seen: datetime
    predictions: int = 0


@dataclass
class VersionWindows:
    quality: QualityWindow
    first_prediction_at: datetime | None = None
    drift: DriftWindow | None = None
    drift_reading: DriftReading | None = None
    quality_reading: QualityReading = field(default_factory=lambda: QualityReading(0, 0, None, None, None))
    bar: QualityBar | None = None  # set from the registry's test figures once they are readable


@dataclass(frozen=True)
class ReportData:
    """A consistent copy of what the report draws, taken under the state lock."""

    state: dict[str, Any]
    points: list[Point]
    promotions: list[Promotion]
    score_cuts: list[float]
    score_live: list[float]
    score_reference: list[float]


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


class MonitorState:
    def __init__(
        self, config: MonitorConfig, references: ReferenceSource, held_out: HeldOutSource = no_held_out
    ) -> None:
        self.config = config
        self.references = references
        self.held_out = held_out
        self.lock = threading.RLock()
        self.windows: OrderedDict[str, VersionWindows] = OrderedDict()
        self.versions: dict[str, VersionSeen] = {}
        self.join = LabelJoin(config.label_ttl, config.max_pending)
        self.ledger = RequestLedger(config.cooldown)
        self.timeline = Timeline()
        self.current_version: str | None = None
        self.predictions = 0
        self.labels = 0
        self.joined = 0
        self.malformed: Counter[str] = Counter()
        # Predictions since the last refresh: they become one timeline point.
        self._interval_start: datetime | None = None
        self._interval_end: datetime | None = None
        self._interval_count = 0

    # ---- events ------------------------------------------------------------------------
    def _windows(self, version: str) -> VersionWindows:
        windows = self.windows.get(version)
        if windows is None:
            windows = VersionWindows(QualityWindow(self.config.quality_window))
            self.windows[version] = windows
            while len(self.windows) > MAX_TRACKED_VERSIONS:
                self.windows.popitem(last=False)
        self.windows.move_to_end(version)
        if windows.drift is None:
            profile = self.references(version)
            if profile is not None:
                windows.drift = DriftWindow(profile, self.config.window)
        return windows

    def observe_prediction(self, prediction: PredictionLog) -> None:
        with self.lock:
            version = prediction.model_version
            self.predictions += 1
            self.current_version = version
            seen = self.versions.setdefault(version, VersionSeen(prediction.timestamp, prediction.timestamp))
            seen.predictions += 1
            seen.last_seen = max(seen.last_seen, prediction.timestamp)
            windows = self._windows(version)
            if windows.first_prediction_at is None:
                windows.first_prediction_at = prediction.timestamp
            if windows.drift is not None:
                windows.drift.observe(prediction.features, prediction.fraud_probability)
            self._interval_count += 1
            if self._interval_start is None or prediction.timestamp < self._interval_start:
                self._interval_start = prediction.timestamp
            if self._interval_end is None or prediction.timestamp > self._interval_end:
                self._interval_end = prediction.timestamp
            scored = Scored(
                prediction.transaction_id,
                version,
                prediction.fraud_probability,
                prediction.decision in FLAGGING_DECISIONS,
                prediction.request.timestamp,
            )
            self._record_outcome(self.join.add_prediction(scored))

    def observe_label(self, label: Label) -> None:
        with self.lock:
            self.labels += 1
            self._record_outcome(self.join.add_label(label.transaction_id, label.is_fraud, label.timestamp))

    def _record_outcome(self, outcome: Outcome | None) -> None:
        if outcome is None:
            return
        self.joined += 1
        windows = self.windows.get(outcome.scored.model_version)
        if windows is not None:  # a label for a version no longer tracked is history, not live quality
            windows.quality.add(outcome)

    def observe_model_event(self, event: ModelEvent) -> None:
        with self.lock:
            if event.model_name != self.config.model_name:
                return
            promotion = Promotion(event.event, event.version, event.previous_version, event.timestamp)
            if self.timeline.add_promotion(promotion):
                windows = self.windows.get(event.version)
                started = windows.first_prediction_at if windows else None
                if started is not None and started < event.timestamp:
                    # Served before (a rollback): its old windows describe another period.
                    self.windows.pop(event.version, None)
                log.info("model change marked", extra={"event": event.event, "version": event.version})

    def observe_training_request(self, request: TrainingRequest) -> None:
        with self.lock:
            self.ledger.record(request)

    def observe_malformed(self, topic: str) -> None:
        with self.lock:
            self.malformed[topic] += 1

    # ---- evaluation --------------------------------------------------------------------
    def refresh(self) -> None:
        """Recompute the current version's readings and add them to the timeline."""
        with self.lock:
            version = self.current_version
            if version is None:
                return
            windows = self._windows(version)
            windows.drift_reading = windows.drift.reading() if windows.drift else None
            windows.quality_reading = windows.quality.reading()
            if windows.bar is None or windows.bar.held_out is None:
                windows.bar = self.config.quality_bar(self.held_out(version))
            if self._interval_start is None or self._interval_end is None:
                return  # labels alone: no new moment on the prediction clock
            quality = windows.quality_reading
            drift = windows.drift_reading
            if drift is not None and drift.window < self.config.min_samples:
                drift = None  # PSI of a few dozen predictions is noise; plot only what could alarm
            self.timeline.add(
                Point(
                    since=self._interval_start,
                    at=self._interval_end,
                    model_version=version,
                    predictions=self._interval_count,
                    psi={n: round(v, 4) for n, v in drift.feature_psi.items()} if drift else {},
                    score_psi=_round(drift.score_psi) if drift else None,
                    precision=quality.precision,
                    recall=quality.recall,
                    pr_auc=quality.pr_auc,
                    labelled=quality.labelled,
                )
            )
            self._interval_start = self._interval_end = None
            self._interval_count = 0

    def crossing(self) -> tuple[str, dict[str, Any]] | None:
        """("drift" | "quality", evidence) when the current version crosses a threshold, else None."""
        with self.lock:
            version = self.current_version
            if version is None or version not in self.windows:
                return None
            cfg = self.config
            windows = self.windows[version]
            drift, quality = windows.drift_reading, windows.quality_reading
            bar = self._bar(windows)
            drifted: dict[str, float] = {}
            if drift is not None and drift.window >= cfg.min_samples:
                for name in cfg.drift_inputs:
                    value = drift.psi_of(name)
                    if value is not None and value >= cfg.psi_threshold:
                        drifted[name] = round(value, 4)
            poor: dict[str, float] = {}
            if quality.labelled >= cfg.min_labels and quality.positives >= cfg.min_positives:
                if quality.recall is not None and quality.recall < bar.min_recall:
                    poor["recall"] = round(quality.recall, 4)
                if quality.pr_auc is not None and quality.pr_auc < bar.min_pr_auc:
                    poor["pr_auc"] = round(quality.pr_auc, 4)
            if not drifted and not poor:
                return None
            evidence: dict[str, Any] = {"model_version": version}
            if drift is not None:
                evidence["drift"] = {
                    "window_predictions": drift.window,
                    "psi_threshold": cfg.psi_threshold,
                    "crossed": drifted,
                    "score_psi": _round(drift.score_psi),
                    "score_chi2_pvalue": _round(drift.score_pvalue, 6),
                }
            evidence["quality"] = {
                "labelled": quality.labelled,
                "positives": quality.positives,
                "precision": _round(quality.precision),
                "recall": _round(quality.recall),
                "pr_auc": _round(quality.pr_auc),
                **bar.describe(),
                "crossed": poor,
            }
            return ("drift" if drifted else "quality"), evidence

    def _bar(self, windows: VersionWindows | None) -> QualityBar:
        """The version's bar as of its last refresh; the floors alone before that."""
        if windows is not None and windows.bar is not None:
            return windows.bar
        return self.config.quality_bar(None)

    def due_request(self, now: datetime) -> TrainingRequest | None:
        """The request to publish now, if a threshold is crossed and this version is armed."""
        with self.lock:
            found = self.crossing()
            version = self.current_version
            if found is None or version is None or not self.ledger.armed(version, now):
                return None
            reason, evidence = found
            return TrainingRequest(
                request_id=self.ledger.next_request_id(version),
                reason=reason,  # type: ignore[arg-type]
                evidence=evidence,
                requested_by=REQUESTED_BY,
                timestamp=now,
            )

    # ---- views -------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The JSON of ``GET /api/state``."""
        with self.lock:
            cfg = self.config
            current = self.windows.get(self.current_version) if self.current_version else None
            drift = current.drift_reading if current else None
            quality = current.quality_reading if current else QualityReading(0, 0, None, None, None)
            return {
                "model_name": cfg.model_name,
                "current_version": self.current_version,
                "counts": {
                    "predictions": self.predictions,
                    "labels": self.labels,
                    "joined": self.joined,
                    "pending_predictions": len(self.join.pending),
                    "early_labels": len(self.join.early),
                    "expired_predictions": self.join.expired_predictions,
                    "expired_labels": self.join.expired_labels,
                    "duplicates": self.join.duplicates,
                    "malformed": dict(self.malformed),
                },
                "drift": {
                    "measured": drift is not None,
                    "window": drift.window if drift else 0,
                    "min_samples": cfg.min_samples,
                    "psi_threshold": cfg.psi_threshold,
                    "monitored": list(cfg.drift_inputs),
                    "psi": {n: round(v, 4) for n, v in sorted(drift.feature_psi.items())} if drift else {},
                    "null_rate": {n: round(v, 4) for n, v in sorted(drift.feature_null_rate.items())} if drift else {},
                    "score_psi": _round(drift.score_psi) if drift else None,
                    "score_chi2_pvalue": _round(drift.score_pvalue, 6) if drift else None,
                },
                "quality": {
                    "labelled": quality.labelled,
                    "positives": quality.positives,
                    "precision": _round(quality.precision),
                    "recall": _round(quality.recall),
                    "pr_auc": _round(quality.pr_auc),
                    "min_labels": cfg.min_labels,
                    "min_positives": cfg.min_positives,
                    **self._bar(current).describe(),
                },
                "requests": [
                    {
                        "request_id": r.request_id,
                        "reason": r.reason,
                        "model_version": r.model_version,
                        "at": r.at.isoformat(),
                        "evidence": r.evidence,
                    }
                    for r in self.ledger.all()
                ],
                "versions_seen": [
                    {
                        "version": v,
                        "first_seen": s.first_seen.isoformat(),
                        "last_seen": s.last_seen.isoformat(),
                        "predictions": s.predictions,
                    }
                    for v, s in sorted(self.versions.items(), key=lambda item: item[1].first_seen)
                ],
                "promotions": [
                    {
                        "event": p.event,
                        "version": p.version,
                        "previous_version": p.previous_version,
                        "at": p.at.isoformat(),
                    }
                    for p in self.timeline.promotions
                ],
            }

    def report_data(self) -> ReportData:
        with self.lock:
            current = self.windows.get(self.current_version) if self.current_version else None
            drift = current.drift_reading if current else None
            return ReportData(
                state=self.snapshot(),
                points=[replace(p, psi=dict(p.psi)) for p in self.timeline.points],
                promotions=list(self.timeline.promotions),
                score_cuts=drift.score_cuts if drift else [],
                score_live=drift.score_live if drift else [],
                score_reference=drift.score_reference if drift else [],
            )
