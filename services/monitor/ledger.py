"""The monitor's own retraining requests: what it already asked for, so one episode gives one request.

The ledger is rebuilt on start from ``rtml.training-requests`` itself (the monitor
reads the topic from the beginning), so a restarted or second monitor knows what was
already asked. Request ids are derived from the model version and the episode's
ordinal for that version: a request re-sent after a crash carries the same id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.common.events import TrainingRequest

REQUESTED_BY = "monitor"


def safe_id(text: str) -> str:
    """``text`` reduced to the characters an event Identifier allows."""
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", text)[:40] or "_"


@dataclass(frozen=True)
class RequestRecord:
    request_id: str
    reason: str
    model_version: str
    at: datetime
    evidence: dict[str, Any]


class RequestLedger:
    def __init__(self, cooldown: timedelta) -> None:
        self.cooldown = cooldown
        self.records: dict[str, RequestRecord] = {}

    def record(self, request: TrainingRequest) -> bool:
        """Remember a request seen on the topic (or just sent); False if it is not the monitor's or known."""
        if request.requested_by != REQUESTED_BY or request.request_id in self.records:
            return False
        version = str(request.evidence.get("model_version", ""))
        self.records[request.request_id] = RequestRecord(
            request.request_id, request.reason, version, request.timestamp, dict(request.evidence)
        )
        return True

    def for_version(self, version: str) -> list[RequestRecord]:
        return sorted((r for r in self.records.values() if r.model_version == version), key=lambda r: r.at)

    def armed(self, version: str, now: datetime) -> bool:
        """A version may be reported once, and again only after the cool-down (a new champion re-arms by itself)."""
        earlier = self.for_version(version)
        return not earlier or now - earlier[-1].at >= self.cooldown

    def next_request_id(self, version: str) -> str:
        return f"monitor-{safe_id(version)}-{len(self.for_version(version)) + 1}"

    def all(self) -> list[RequestRecord]:
        return sorted(self.records.values(), key=lambda r: r.at)
