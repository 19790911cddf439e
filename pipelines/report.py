"""The HTML evaluation report the KFP UI shows: PR curve, score distributions, feature importance."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")  # components run headless
import matplotlib.pyplot as plt
import numpy as np

from services.models.evaluation import Evaluation


def _png(fig: plt.Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def render(kind: str, evaluation: Evaluation, labels: np.ndarray, importance: Mapping[str, float]) -> str:
    figures = []
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(evaluation.pr_curve["recall"], evaluation.pr_curve["precision"])
    ax.axhline(evaluation.metrics["base_rate"], linestyle="--", color="grey", label="base rate")
    ax.set(xlabel="recall", ylabel="precision", title=f"PR curve ({kind}), AP={evaluation.metrics['pr_auc']:.3f}")
    ax.legend()
    figures.append(("Precision-recall on the test set", _png(fig)))

    fig, ax = plt.subplots(figsize=(5, 4))
    bins = [float(b) for b in np.linspace(0, 1, 41)]
    ax.hist(evaluation.scores[labels == 0], bins=bins, alpha=0.6, density=True, label="legitimate")
    ax.hist(evaluation.scores[labels == 1], bins=bins, alpha=0.6, density=True, label="fraud")
    ax.set(xlabel="fraud probability", ylabel="density", yscale="log", title="Score distributions")
    ax.legend()
    figures.append(("Score distributions", _png(fig)))

    fig, ax = plt.subplots(figsize=(5, 4))
    mean = [r["mean_score"] for r in evaluation.reliability]
    rate = [r["fraud_rate"] for r in evaluation.reliability]
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.plot(mean, rate, marker="o")
    ax.set(xlabel="mean predicted", ylabel="observed fraud rate", title="Reliability")
    figures.append(("Calibration", _png(fig)))

    top = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:15]
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.barh([k for k, _ in reversed(top)], [v for _, v in reversed(top)])
    ax.set(xlabel="drop in PR-AUC when shuffled", title="Permutation importance")
    figures.append(("Global feature importance", _png(fig)))

    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.4f}</td></tr>" for k, v in sorted(evaluation.metrics.items()))
    images = "".join(f"<h2>{html.escape(t)}</h2><img src='data:image/png;base64,{b}'/>" for t, b in figures)
    # Every feature's figure as text too: the chart shows the top 15, and a person (or a diff) can read this.
    ranked = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)
    importance_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.6f}</td></tr>" for k, v in ranked)
    return (
        f"<html><head><meta charset='utf-8'><title>RTML {kind} evaluation</title></head><body>"
        f"<h1>Fraud model ({html.escape(kind)}): held-out test set</h1>"
        f"<table border='1'><tr><th>metric</th><th>value</th></tr>{rows}</table>{images}"
        f"<h2>Permutation importance, every feature</h2><table border='1' id='feature-importance'>"
        f"<tr><th>feature</th><th>drop in PR-AUC when shuffled</th></tr>{importance_rows}</table></body></html>"
    )
