"""The monitor's thresholds and window sizes, read from Settings (``RTML_MONITOR_*``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from services.common.settings import Settings
from services.monitor.bar import HeldOutQuality, QualityBar, quality_bar
from services.monitor.drift import SCORE

MODEL_NAME = "fraud"  # the registry name of the model whose predictions the monitor reads


@dataclass(frozen=True)
class MonitorConfig:
    window: int = 2000
    min_samples: int = 1000
    psi_threshold: float = 0.25
    # Inputs that are stationary under normal traffic; see docs/monitoring.md for why the others are only reported.
    drift_inputs: tuple[str, ...] = (
        "txn_amount_log",
        "txn_has_device",
        "txn_channel_web",
        "txn_channel_pos",
        "txn_channel_app",
        SCORE,
    )
    quality_window: int = 5000
    min_labels: int = 500
    min_positives: int = 20
    # Absolute floors; the bar of a version with registered test metrics is a share of those (bar.py).
    min_recall: float = 0.5
    min_pr_auc: float = 0.3
    min_recall_ratio: float = 0.7
    min_pr_auc_ratio: float = 0.7
    cooldown: timedelta = timedelta(minutes=30)
    label_ttl: timedelta = timedelta(hours=264)
    max_pending: int = 200_000
    model_name: str = MODEL_NAME

    def __post_init__(self) -> None:
        if self.min_samples > self.window:
            raise ValueError(
                f"RTML_MONITOR_MIN_SAMPLES ({self.min_samples}) cannot exceed RTML_MONITOR_WINDOW ({self.window})"
            )
        if self.min_labels > self.quality_window:
            raise ValueError(
                f"RTML_MONITOR_MIN_LABELS ({self.min_labels}) cannot exceed RTML_MONITOR_QUALITY_WINDOW ({self.quality_window})"
            )

    def quality_bar(self, held_out: HeldOutQuality | None) -> QualityBar:
        """The live-quality bar of a version with these held-out figures (None: the floors alone)."""
        return quality_bar(self.min_recall, self.min_pr_auc, self.min_recall_ratio, self.min_pr_auc_ratio, held_out)

    @classmethod
    def from_settings(cls, settings: Settings) -> MonitorConfig:
        return cls(
            window=settings.monitor_window,
            min_samples=settings.monitor_min_samples,
            psi_threshold=settings.monitor_psi_threshold,
            drift_inputs=tuple(n.strip() for n in settings.monitor_drift_features.split(",") if n.strip()),
            quality_window=settings.monitor_quality_window,
            min_labels=settings.monitor_min_labels,
            min_positives=settings.monitor_min_positives,
            min_recall=settings.monitor_min_recall,
            min_pr_auc=settings.monitor_min_pr_auc,
            min_recall_ratio=settings.monitor_min_recall_ratio,
            min_pr_auc_ratio=settings.monitor_min_pr_auc_ratio,
            cooldown=timedelta(seconds=settings.monitor_cooldown_s),
            label_ttl=timedelta(hours=settings.monitor_label_ttl_h),
            max_pending=settings.monitor_max_pending,
        )
