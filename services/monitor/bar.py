"""The live-quality bar a model version must clear: a share of what it scored on its own held-out
test set (the registry's metrics), never below the absolute floors.

Absolute thresholds alone cannot fit every model: a model whose test PR-AUC is 0.59 sits near a
0.5 floor on perfectly normal traffic, while one tested at 0.95 could lose half its quality before
a 0.5 floor noticed. Scaling the bar by each version's own test figures asks "is it still doing
what it did when it was promoted?".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Keys of the metrics the training pipeline registers (services/models/evaluation.py):
# average precision on the test set, and recall at FIXED_FPR (1 %) false positives on it.
PR_AUC_METRIC = "pr_auc"
RECALL_METRIC = "recall_at_fpr_0.01"


@dataclass(frozen=True)
class HeldOutQuality:
    """What a version scored on its test set when it was trained; None where not recorded."""

    pr_auc: float | None
    recall: float | None

    @classmethod
    def from_metrics(cls, metrics: Mapping[str, Any]) -> HeldOutQuality | None:
        """None when the record holds neither figure (e.g. a model registered by hand)."""
        found = cls(_share(metrics.get(PR_AUC_METRIC)), _share(metrics.get(RECALL_METRIC)))
        return None if found.pr_auc is None and found.recall is None else found


def _share(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) if 0.0 <= value <= 1.0 else None


@dataclass(frozen=True)
class QualityBar:
    """Live recall or PR-AUC below these alarms (for one version)."""

    min_recall: float
    min_pr_auc: float
    floor_recall: float
    floor_pr_auc: float
    recall_ratio: float
    pr_auc_ratio: float
    held_out: HeldOutQuality | None

    def describe(self) -> dict[str, Any]:
        """How the bar was set, for /api/state and the evidence of a request."""
        return {
            "min_recall": round(self.min_recall, 4),
            "min_pr_auc": round(self.min_pr_auc, 4),
            "floor_min_recall": self.floor_recall,
            "floor_min_pr_auc": self.floor_pr_auc,
            "min_recall_ratio": self.recall_ratio,
            "min_pr_auc_ratio": self.pr_auc_ratio,
            "test_recall_at_fpr_0.01": self.held_out.recall if self.held_out else None,
            "test_pr_auc": self.held_out.pr_auc if self.held_out else None,
        }


def quality_bar(
    floor_recall: float,
    floor_pr_auc: float,
    recall_ratio: float,
    pr_auc_ratio: float,
    held_out: HeldOutQuality | None,
) -> QualityBar:
    """``max(floor, ratio * test figure)`` per measure; the floor alone when the figure is unknown."""

    def bar(floor: float, ratio: float, tested: float | None) -> float:
        return floor if tested is None else max(floor, ratio * tested)

    return QualityBar(
        min_recall=bar(floor_recall, recall_ratio, held_out.recall if held_out else None),
        min_pr_auc=bar(floor_pr_auc, pr_auc_ratio, held_out.pr_auc if held_out else None),
        floor_recall=floor_recall,
        floor_pr_auc=floor_pr_auc,
        recall_ratio=recall_ratio,
        pr_auc_ratio=pr_auc_ratio,
        held_out=held_out,
    )
