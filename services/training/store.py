"""Run records as one JSON file per run under ``<data_dir>/training/runs/``."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


FINAL_STATES = (RunState.SUCCEEDED, RunState.FAILED)


class RunRecord(BaseModel):
    """One training run from its acceptance to its outcome."""

    id: str
    state: RunState = RunState.QUEUED
    reason: str
    request_ids: list[str]
    requested_by: str = "unknown"
    evidence: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)
    mode: str = "local"
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    snapshot: dict[str, Any] = Field(default_factory=dict)
    kfp_run_id: str | None = None
    outcome: dict[str, Any] | None = None
    error: str | None = None
    log_path: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def public(self) -> dict[str, Any]:
        return {**self.model_dump(mode="json"), "duration_s": self.duration_s}


def new_run_id(now: datetime) -> str:
    return f"run-{now.astimezone(UTC):%Y%m%dT%H%M%S}-{os.urandom(3).hex()}"


class RunStore:
    """Thread-safe: the poll loop, the worker thread and HTTP handlers all read and write it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def path(self, run_id: str) -> Path:
        return self.directory / f"{run_id}.json"

    def log_path(self, run_id: str) -> Path:
        return self.directory / f"{run_id}.log"

    def save(self, record: RunRecord) -> RunRecord:
        with self._lock:
            target = self.path(record.id)
            # Write aside and rename so a crash never leaves a torn record.
            partial = target.with_suffix(".json.partial")
            partial.write_text(record.model_dump_json(indent=2))
            partial.replace(target)
        return record

    def get(self, run_id: str) -> RunRecord | None:
        path = self.path(run_id)
        if "/" in run_id or not path.is_file():
            return None
        with self._lock:
            return RunRecord.model_validate_json(path.read_text())

    def all(self) -> list[RunRecord]:
        """Every run, newest first."""
        with self._lock:
            records = [RunRecord.model_validate_json(p.read_text()) for p in self.directory.glob("*.json") if "." not in p.stem]
        return sorted(records, key=lambda r: (r.created_at, r.id), reverse=True)

    def update(self, record: RunRecord, **changes: Any) -> RunRecord:
        return self.save(record.model_copy(update=changes))
