"""Prometheus metrics of the feature service; ``stage`` is user, label or merchant."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Contract events only (rtml.transactions, rtml.labels), so its total is the ingest count.
EVENTS_IN = Counter("rtml_feature_events_total", "Events consumed", ["topic", "outcome"])
INTERNAL_EVENTS = Counter(
    "rtml_feature_internal_events_total",
    "Facts consumed from the stages' internal topics (a dead-lettered record counts once)",
    ["topic", "outcome"],
)
FORWARDED = Counter("rtml_feature_forwarded_total", "Records (batches of facts) a stage published to the next stage", ["stage"])
DLQ_EVENTS = Counter("rtml_feature_dlq_total", "Events sent to rtml.dlq", ["topic", "field"])
BATCH_SIZE = Histogram(
    "rtml_feature_batch_records",
    "Records per micro-batch",
    ["stage"],
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
BATCH_LATENCY = Histogram(
    "rtml_feature_batch_seconds",
    "Handling time of one micro-batch (decode to store write and forward)",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
ROWS_WRITTEN = Counter("rtml_feature_rows_written_total", "Feature rows pushed", ["view"])
CONSUMER_LAG = Gauge("rtml_feature_consumer_lag", "Records behind the partition end", ["topic", "partition"])
FRESHNESS = Histogram(
    "rtml_feature_freshness_seconds",
    "Event time to online-readable time of the newest user row per key",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
REPLAYED = Counter("rtml_feature_replayed_total", "Events replayed to rebuild window state", ["topic"])
STAGE_READY = Gauge("rtml_feature_stage_ready", "1 once the stage's assignment is rebuilt and consuming", ["stage"])
ASSIGNED = Gauge("rtml_feature_assigned_partitions", "Partitions this instance owns per stage", ["stage"])
