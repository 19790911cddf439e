"""Prometheus view of the monitor's state, computed at scrape time so it can never disagree with /api/state."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.monitor.state import MonitorState


class MonitorCollector(Collector):
    def __init__(self, state: MonitorState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        snap = self.state.snapshot()
        counts = snap["counts"]
        version = snap["current_version"] or ""
        yield CounterMetricFamily("rtml_monitor_predictions", "Prediction logs read", value=counts["predictions"])
        yield CounterMetricFamily("rtml_monitor_labels", "Labels read", value=counts["labels"])
        yield CounterMetricFamily(
            "rtml_monitor_labels_joined", "Labels joined to their prediction", value=counts["joined"]
        )
        malformed = CounterMetricFamily("rtml_monitor_malformed", "Messages skipped as malformed", labels=["topic"])
        for topic, n in sorted(counts["malformed"].items()):
            malformed.add_metric([topic], n)
        yield malformed
        yield GaugeMetricFamily(
            "rtml_monitor_pending_predictions", "Predictions waiting for a label", value=counts["pending_predictions"]
        )

        drift = snap["drift"]
        window = GaugeMetricFamily(
            "rtml_monitor_drift_window", "Predictions in the drift window", labels=["model_version"]
        )
        feature_psi = GaugeMetricFamily(
            "rtml_monitor_feature_psi",
            "PSI of a model input against its reference",
            labels=["model_version", "feature"],
        )
        score_psi = GaugeMetricFamily(
            "rtml_monitor_score_psi", "PSI of the score against its reference", labels=["model_version"]
        )
        pvalue = GaugeMetricFamily(
            "rtml_monitor_score_chi2_pvalue",
            "Chi-square p-value of live vs reference score bins",
            labels=["model_version"],
        )
        if version and drift["measured"]:
            window.add_metric([version], drift["window"])
            for feature, value in drift["psi"].items():
                feature_psi.add_metric([version, feature], value)
            if drift["score_psi"] is not None:
                score_psi.add_metric([version], drift["score_psi"])
                pvalue.add_metric([version], drift["score_chi2_pvalue"])
        yield from (window, feature_psi, score_psi, pvalue)

        quality = snap["quality"]
        labelled = GaugeMetricFamily(
            "rtml_monitor_quality_window", "Labelled predictions in the quality window", labels=["model_version"]
        )
        families = {
            name: GaugeMetricFamily(
                f"rtml_monitor_live_{name}", f"Live {name} over the quality window", labels=["model_version"]
            )
            for name in ("precision", "recall", "pr_auc")
        }
        if version:
            labelled.add_metric([version], quality["labelled"])
            for name, family in families.items():
                if quality[name] is not None:
                    family.add_metric([version], quality[name])
        yield labelled
        yield from families.values()

        requests = CounterMetricFamily(
            "rtml_monitor_training_requests", "Retraining requests made by the monitor", labels=["reason"]
        )
        for reason, n in sorted(Counter(r["reason"] for r in snap["requests"]).items()):
            requests.add_metric([reason], n)
        yield requests
        yield CounterMetricFamily("rtml_monitor_promotions", "Model changes seen", value=len(snap["promotions"]))
        serving = GaugeMetricFamily(
            "rtml_monitor_serving_version", "1 for the version behind the latest prediction", labels=["model_version"]
        )
        if version:
            serving.add_metric([version], 1)
        yield serving


def monitor_registry(state: MonitorState) -> CollectorRegistry:
    """A registry of its own, so several monitors (tests) never collide in the global one."""
    registry = CollectorRegistry()
    registry.register(MonitorCollector(state))
    return registry
