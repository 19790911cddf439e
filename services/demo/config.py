"""What a demo run does: the stream's shape, its pace and the bars it must clear.

Kept apart from the orchestrator so the CLI can build and check a config (flags, defaults) without
importing the stack the orchestrator drives (Feast, scikit-learn, the services).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DemoConfig:
    data_dir: Path
    # The stream's shape decides whether a retrain can win: the retrain learns from every labelled
    # transaction so far, so the post-drift share at the request must be large enough. With 40,000
    # transactions, 1,500 users, history 12,000 and drift at 20,000, the retrained champion was no
    # better than the old one on the same post-swap requests (PR-AUC gain interval -0.10 .. +0.02,
    # twice); with this shape it won by +0.15 .. +0.30 in each of five runs (docs/benchmarks.md).
    events: int = 26_000  # transactions in the whole simulated stream
    history: int = 10_000  # transactions recorded before the first model is trained
    drift_at: int | None = 13_000  # None: no drift (the false-alarm check)
    seed: int = 7
    users: int = 800
    merchants: int = 200
    rate: float = 400.0  # events/s while watching for drift
    # events/s while a retraining run is under way: keeps traffic flowing across the swap, but spends
    # few events, since a run takes 2 minutes on a quiet machine and 6 on a busy one (the stream must
    # still hold the post-swap window after that: 740 transactions were left in a run at 8 events/s).
    idle_rate: float = 4.0
    # Traffic holds while the monitor has read more than this many fewer predictions than were answered.
    # On a loaded machine the monitor fell minutes behind a 400 events/s stream, so drift was reported
    # (and the retrain started) only after most of the post-drift stream was spent, and a run ended
    # 900 requests short of the post-swap window. Holding keeps the stream's shape, not just its length,
    # the same on any machine: the request comes at the same point of the stream.
    monitor_lag: int = 1_000
    # After the swap: at least 4,000 requests and 100 frauds (~6,000 requests at 1.5-2 % post-drift
    # fraud), so the paired-bootstrap interval of new minus old PR-AUC on the same requests is about
    # ±0.065: with 60 frauds it was ±0.08, and a loaded CI run (a smaller gain) reached -0.003 .. +0.155.
    after_swap: int = 4_000  # transactions scored after the new champion answers, at least ...
    after_swap_frauds: int = 100  # ... and frauds among them: enough to tell two models' PR-AUC apart
    mlp_max_epochs: int = 30
    stage_timeout_s: float = 600.0

    def validate(self) -> None:
        if not 0 < self.history < self.events:
            raise ValueError(f"history must be between 1 and events-1, got {self.history}")
        if self.drift_at is not None and not self.history < self.drift_at < self.events:
            raise ValueError(f"drift_at must be after the history ({self.history}) and before {self.events}")
