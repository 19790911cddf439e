"""Prometheus metrics of the inference service, in their own registry (served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class InferenceMetrics:
    """Every metric the service exports; one instance per process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.request_latency = Histogram(
            "rtml_inference_request_seconds",
            "Time from request received to answer ready, per endpoint",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "rtml_inference_requests", "Answered requests by endpoint and HTTP status", ["endpoint", "status"], registry=r
        )
        self.batch_size = Histogram(
            "rtml_inference_batch_size",
            "Transactions scored together in one feature read and one model call",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.feature_misses = Counter(
            "rtml_inference_feature_misses", "Stored features absent and defaulted, per feature", ["feature"], registry=r
        )
        self.decisions = Counter(
            "rtml_inference_decisions", "Decisions answered, per decision and model version", ["decision", "model_version"], registry=r
        )
        self.model_info = Gauge(
            "rtml_inference_model_info", "1 for the model version currently served", ["model_version"], registry=r
        )
        self.model_swaps = Counter("rtml_inference_model_swaps", "Models switched to after load and warm-up", registry=r)
        self.model_rejections = Counter(
            "rtml_inference_model_rejections", "Candidate models refused (load or warm-up failed)", ["model_version"], registry=r
        )
        self.log_buffered = Gauge(
            "rtml_inference_prediction_log_buffered", "Prediction logs waiting to be sent to Kafka", registry=r
        )
        self.log_sent = Counter("rtml_inference_prediction_log_sent", "Prediction logs acknowledged by Kafka", registry=r)
        self.log_dropped = Counter(
            "rtml_inference_prediction_log_dropped", "Prediction logs dropped because the buffer was full", registry=r
        )
        self.log_send_errors = Counter(
            "rtml_inference_prediction_log_send_errors", "Failed sends to Kafka (the log is buffered again)", registry=r
        )
        self.draining = Gauge(
            "rtml_inference_draining", "1 once the service drains: every answer closes its connection", registry=r
        )

    def served(self, version: str, previous: str | None) -> None:
        if previous is not None:
            self.model_info.remove(previous)
        self.model_info.labels(version).set(1)
