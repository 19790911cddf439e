"""What the registry recorded about each served model version, read once: its reference statistics
(for drift) and its held-out test figures (for the live-quality bar)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from services.monitor.bar import HeldOutQuality
from services.monitor.drift import ReferenceProfile, ReferenceStatsError
from services.registry import ModelRegistry, ModelVersion, RegistryError

log = logging.getLogger(__name__)

ReferenceSource = Callable[[str], ReferenceProfile | None]
HeldOutSource = Callable[[str], HeldOutQuality | None]
RETRY_AFTER_S = 30.0  # a version may be served a moment before its record is readable (eventual S3 listing)


def no_held_out(_version: str) -> HeldOutQuality | None:
    """For callers without a registry: every version is judged by the absolute floors."""
    return None


class RegistryReferences:
    """``version -> ReferenceProfile | None``; a version without usable stats is retried now and then.

    ``held_out(version)`` gives the same record's test figures; both come from one registry read.
    """

    def __init__(self, registry: ModelRegistry, model_name: str) -> None:
        self.registry = registry
        self.model_name = model_name
        self.profiles: dict[str, ReferenceProfile] = {}
        self.tested: dict[str, HeldOutQuality | None] = {}  # present once the record was read
        self.failed_at: dict[str, float] = {}
        self.problems: dict[str, str] = {}

    def __call__(self, version: str) -> ReferenceProfile | None:
        if version in self.profiles:
            return self.profiles[version]
        record = self._record(version)
        if record is None:
            return None
        try:
            if not record.reference_stats:
                raise ReferenceStatsError("the registry record has no reference_stats")
            profile = ReferenceProfile.from_stats(version, record.reference_stats)
        except ReferenceStatsError as exc:
            self._failed(version, exc)
            return None
        self.profiles[version] = profile
        self.problems.pop(version, None)
        return profile

    def held_out(self, version: str) -> HeldOutQuality | None:
        """The version's registered test figures; None while unreadable or when it has none."""
        if version not in self.tested:
            self._record(version)
        return self.tested.get(version)

    def _record(self, version: str) -> ModelVersion | None:
        failed = self.failed_at.get(version)
        if failed is not None and time.monotonic() - failed < RETRY_AFTER_S:
            return None
        try:
            record = self.registry.get(self.model_name, version)
        except (RegistryError, OSError) as exc:
            self._failed(version, exc)
            return None
        first_read = version not in self.tested
        self.tested[version] = HeldOutQuality.from_metrics(record.metrics)
        if first_read and self.tested[version] is None:
            log.warning(
                "no test metrics registered; live quality is judged by the absolute floors only",
                extra={"model": self.model_name, "version": version},
            )
        return record

    def _failed(self, version: str, exc: Exception) -> None:
        self.failed_at[version] = time.monotonic()
        self.problems[version] = str(exc)
        log.warning(
            "no usable reference statistics; drift is not measured for this version",
            extra={"model": self.model_name, "version": version, "reason": str(exc)},
        )
