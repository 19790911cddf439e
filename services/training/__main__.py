"""``python -m services.training``: retraining requests in, pipeline runs out, run records over HTTP."""

from __future__ import annotations

import sys

from services.common.kafka import ShutdownFlag
from services.common.logs import configure_logging
from services.common.settings import SettingsError, get_settings


def main() -> int:
    try:
        settings = get_settings()
    except SettingsError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    configure_logging(settings, "training")
    from services.training.service import TrainingService

    TrainingService(settings).run(ShutdownFlag().install())
    return 0


if __name__ == "__main__":
    sys.exit(main())
