"""``python -m services.feature``: stream transactions and labels into the Feast store."""

from __future__ import annotations

import sys

from services.common.feast_imports import feast_without_torch
from services.common.kafka import ShutdownFlag
from services.common.logs import configure_logging
from services.common.settings import SettingsError, get_settings


def main() -> int:
    try:
        settings = get_settings()
    except SettingsError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    configure_logging(settings, "feature")
    feast_without_torch()
    from services.feature.service import run

    run(settings, ShutdownFlag().install())
    return 0


if __name__ == "__main__":
    sys.exit(main())
