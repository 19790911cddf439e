"""The model card stored with every registered version (Markdown)."""

from __future__ import annotations

from collections.abc import Mapping

from services.registry.schema import DataWindow, Thresholds


def model_card(
    kind: str,
    metrics: Mapping[str, float],
    window: DataWindow,
    features: list[str],
    thresholds: Thresholds,
    gate_reason: str,
    run_id: str,
) -> str:
    lines = [
        f"# Fraud model ({kind})",
        "",
        "Scores card transactions with the probability that they are fraudulent.",
        "",
        "## Intended use",
        f"Real-time decisions: approve below {thresholds.review:.4f}, review from {thresholds.review:.4f},"
        f" decline from {thresholds.decline:.4f} (chosen on validation data at fixed false-positive rates).",
        "",
        "## Data",
        f"Labelled transactions from {window.start} to {window.end} ({window.rows} rows),"
        f" split by time into train / validation / test; snapshot `{window.dataset_hash}` at {window.dataset_uri or '-'}.",
        f"Features ({len(features)}), read point-in-time from the Feast FeatureService `fraud_scoring`: {', '.join(features)}.",
        "",
        "## Held-out test metrics",
        *(f"- {name}: {value:.4f}" for name, value in sorted(metrics.items())),
        "",
        "## Gate",
        gate_reason,
        "",
        "## Limitations",
        "Labels arrive late (chargebacks) and some never do, so recent fraud is under-represented;"
        " the monitor compares live feature and score distributions with this version's reference statistics.",
        "",
        f"Training run: {run_id or '-'}",
    ]
    return "\n".join(lines) + "\n"
