"""The served model: load a candidate beside the current one, warm it, then switch in one assignment."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from services.models.artifacts import load_model
from services.registry import ModelRegistry

from .metrics import InferenceMetrics
from .scoring import LoadedModel, warm_up

log = logging.getLogger(__name__)

MODEL_NAME = "fraud"


class ChampionSlot:
    """Holds the model every new batch scores with.

    A batch reads ``current`` once and keeps that object, so requests in flight finish
    on the model they started with; swapping is a single reference assignment.
    """

    def __init__(self, registry: ModelRegistry, cache_dir: Path, metrics: InferenceMetrics, name: str = MODEL_NAME) -> None:
        self.registry = registry
        self.cache_dir = cache_dir
        self.metrics = metrics
        self.name = name
        self.current: LoadedModel | None = None
        self.rejected: dict[str, str] = {}  # version -> why, so a broken champion is not retried every poll
        self._lock = threading.Lock()  # one load at a time; scoring never takes it

    def install(self, version: str, *, retry_rejected: bool = False) -> bool:
        """Make ``version`` the served model unless it already is; False when it was refused."""
        with self._lock:
            if self.current is not None and self.current.version == version:
                return True
            if version in self.rejected and not retry_rejected:
                return False
            try:
                record = self.registry.get(self.name, version)
                candidate = LoadedModel(record, load_model(self.registry, record, self.cache_dir))
                warm_up(candidate)
            except Exception as exc:
                self.rejected[version] = f"{type(exc).__name__}: {exc}"
                self.metrics.model_rejections.labels(version).inc()
                log.error(
                    "model refused; the current model keeps serving",
                    extra={"model": self.name, "version": version, "reason": self.rejected[version],
                           "serving": self.current.version if self.current else None},
                )
                return False
            previous = self.current
            self.current = candidate
            self.rejected.pop(version, None)
            self.metrics.served(version, previous.version if previous else None)
            self.metrics.model_swaps.inc()
            log.info(
                "model switched",
                extra={"model": self.name, "version": version, "previous": previous.version if previous else None},
            )
            return True

    def follow_registry(self) -> None:
        """Serve whatever the registry names as champion (the fallback when an event was missed)."""
        record = self.registry.champion(self.name)
        if record is not None:
            self.install(record.version)
