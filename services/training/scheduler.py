"""One run at a time on a worker thread, with room for one more waiting; records every transition."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from services.training.executor import RunExecutor, RunFailed
from services.training.metrics import TrainingMetrics
from services.training.store import RunRecord, RunState, RunStore

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the training service stopped during the run"


class RunScheduler:
    def __init__(self, runs: RunStore, executor: RunExecutor, metrics: TrainingMetrics) -> None:
        self.runs = runs
        self.executor = executor
        self.metrics = metrics
        self._cond = threading.Condition()
        self._running: RunRecord | None = None
        self._queued: RunRecord | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="training-runs", daemon=True)

    def start(self) -> RunScheduler:
        self._recover()
        self._thread.start()
        return self

    def _recover(self) -> None:
        """A run left running by a previous process is failed; the newest queued one waits again."""
        for record in self.runs.all():
            if record.state == RunState.RUNNING:
                self.runs.update(record, state=RunState.FAILED, finished_at=datetime.now(UTC), error=INTERRUPTED)
            elif record.state == RunState.QUEUED:
                if self._queued is None:
                    self._queued = record
                else:
                    self.runs.update(record, state=RunState.FAILED, error="dropped: queue holds one run at most")
        self.metrics.active.set(1 if self._queued else 0)

    def has_room(self) -> bool:
        with self._cond:
            return self._queued is None and not self._stopping

    def submit(self, record: RunRecord) -> bool:
        """Queue ``record`` (already saved as queued); False when a run is already waiting."""
        with self._cond:
            if self._queued is not None or self._stopping:
                return False
            self._queued = record
            self.metrics.active.set(1 + (self._running is not None))
            self._cond.notify_all()
            return True

    def _work(self) -> None:
        while True:
            with self._cond:
                while self._queued is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                record, self._queued = self._queued, None
                self._running = record
            assert record is not None
            try:
                self._run(record)
            finally:
                with self._cond:
                    self._running = None
                    self.metrics.active.set(1 if self._queued else 0)

    def _run(self, record: RunRecord) -> None:
        record = self.runs.update(
            record, state=RunState.RUNNING, started_at=datetime.now(UTC), log_path=str(self.runs.log_path(record.id))
        )
        self.metrics.runs_started.inc()
        log.info("training run started", extra={"run_id": record.id, "reason": record.reason})
        try:
            record, outcome = self.executor.execute(record)
        except RunFailed as exc:
            self._finish(record, RunState.FAILED, error=str(exc))
        except Exception as exc:  # a bug or an unreachable dependency: the run fails, the service lives on
            log.exception("training run crashed", extra={"run_id": record.id})
            self._finish(record, RunState.FAILED, error=f"{type(exc).__name__}: {exc}")
        else:
            self._finish(record, RunState.SUCCEEDED, outcome=outcome)

    def _finish(self, record: RunRecord, state: RunState, **changes: object) -> None:
        done = self.runs.update(record, state=state, finished_at=datetime.now(UTC), **changes)
        self.metrics.runs_finished.labels(state=state.value).inc()
        if done.duration_s is not None:
            self.metrics.run_duration.observe(done.duration_s)
        outcome = done.outcome or {}
        if outcome.get("promoted"):
            self.metrics.promotions.inc()
        log.info(
            "training run finished",
            extra={
                "run_id": done.id,
                "state": state.value,
                "duration_s": done.duration_s,
                "promoted": outcome.get("promoted"),
                "registered": outcome.get("registered"),
                "champion_after": outcome.get("champion_after"),
                "gate_reason": outcome.get("reason"),
                "error": done.error,
            },
        )

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ends a run in flight (recorded as failed) and leaves a queued one for the next start."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self.executor.interrupt()
        self._thread.join(timeout=timeout_s)
