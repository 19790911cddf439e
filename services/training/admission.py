"""Which retraining requests start a run: each request_id once, and at most one run per cool-down."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

from services.training.store import RunStore


class Decision(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    RATE_LIMITED = "rate_limited"
    BUSY = "busy"


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    detail: str


class RequestLedger:
    """Append-only JSON lines of every request_id seen and what was decided, so a restart
    (or a redelivered batch) never turns the same request into a second run."""

    def __init__(self, path: Path, runs: RunStore) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._seen: dict[str, str] = {}
        if path.is_file():
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by a crash; the run records below still cover accepted ones
                self._seen[str(entry["request_id"])] = str(entry["decision"])
        # A run record is written before its ledger line: the records are the ground truth.
        for record in runs.all():
            for request_id in record.request_ids:
                self._seen.setdefault(request_id, Decision.ACCEPTED.value)

    def seen(self, request_id: str) -> str | None:
        with self._lock:
            return self._seen.get(request_id)

    def record(self, request_id: str, decision: Decision, at: datetime, run_id: str | None = None) -> None:
        entry = {"request_id": request_id, "decision": decision.value, "run_id": run_id, "at": at.isoformat()}
        with self._lock:
            if request_id in self._seen:
                return
            self._seen[request_id] = decision.value
            with self.path.open("a") as out:
                out.write(json.dumps(entry) + "\n")


class Admission:
    """Decides for topic requests; the cool-down counts from the newest accepted run (persisted in the run store)."""

    def __init__(self, ledger: RequestLedger, runs: RunStore, cooldown_s: float) -> None:
        self.ledger = ledger
        self.runs = runs
        self.cooldown = timedelta(seconds=cooldown_s)

    def decide(self, request_id: str, now: datetime, *, cooldown: bool = True) -> Verdict:
        earlier = self.ledger.seen(request_id)
        if earlier is not None:
            return Verdict(Decision.DUPLICATE, f"request {request_id} was already handled ({earlier})")
        if cooldown and self.cooldown > timedelta(0):
            newest = self.runs.all()
            if newest and now - newest[0].created_at < self.cooldown:
                wait = self.cooldown - (now - newest[0].created_at)
                return Verdict(
                    Decision.RATE_LIMITED,
                    f"run {newest[0].id} was accepted {int((now - newest[0].created_at).total_seconds())} s ago; "
                    f"cool-down ends in {int(wait.total_seconds())} s",
                )
        return Verdict(Decision.ACCEPTED, "accepted")
