"""``python -m services.feature``: stream transactions and labels into the Feast store."""

from __future__ import annotations

import sys

from services.common.kafka import ShutdownFlag
from services.common.logs import configure_logging
from services.common.settings import SettingsError, get_settings


def _without_torch() -> None:
    """Mark torch absent before Feast is imported. Feast's offline-store module imports torch eagerly
    (``feast/torch_wrapper.py``, for tensor conversions this service never asks for): 2-3.5 s of CPU,
    about half of this service's start on two cores, paid again by every restart after a crash
    (tests/resilience/test_consumer_crashes.py). Feast catches the ImportError and records torch as
    unavailable. Only the service's own process does this: code importing services.feature in-process
    (tests, tools) may well need torch."""
    if "torch" not in sys.modules:
        sys.modules["torch"] = None  # type: ignore[assignment]  # None in sys.modules: import raises ImportError


def main() -> int:
    try:
        settings = get_settings()
    except SettingsError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    configure_logging(settings, "feature")
    _without_torch()
    from services.feature.service import run

    run(settings, ShutdownFlag().install())
    return 0


if __name__ == "__main__":
    sys.exit(main())
