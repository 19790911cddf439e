"""Prometheus metrics of the training service, on its own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class TrainingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.runs_started = Counter("rtml_training_runs_started_total", "Runs that began", registry=self.registry)
        self.runs_finished = Counter(
            "rtml_training_runs_finished_total", "Runs that ended, by state", ["state"], registry=self.registry
        )
        self.run_duration = Histogram(
            "rtml_training_run_duration_seconds",
            "Wall time from start to outcome",
            buckets=(30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
            registry=self.registry,
        )
        self.requests = Counter(
            "rtml_training_requests_total",
            "Retraining requests by source and decision (accepted, duplicate, rate_limited, busy, invalid)",
            ["source", "decision"],
            registry=self.registry,
        )
        self.promotions = Counter("rtml_training_promotions_total", "Runs whose gate promoted", registry=self.registry)
        self.active = Gauge("rtml_training_runs_active", "Runs running or queued", registry=self.registry)
        for state in ("succeeded", "failed"):
            self.runs_finished.labels(state=state)
        for decision in ("accepted", "duplicate", "rate_limited", "busy", "invalid"):
            self.requests.labels(source="topic", decision=decision)
