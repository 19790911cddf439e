"""``python -m services.monitor``: drift and live-quality monitoring, retraining requests, the report."""

from __future__ import annotations

import sys

from services.common.kafka import ShutdownFlag
from services.common.logs import configure_logging
from services.common.settings import SettingsError, get_settings


def main() -> int:
    try:
        settings = get_settings()
        from services.monitor.config import MonitorConfig

        config = MonitorConfig.from_settings(settings)
    except (SettingsError, ValueError) as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    configure_logging(settings, "monitor")
    from services.monitor.service import MonitorService

    MonitorService(settings, config).run(ShutdownFlag().install())
    return 0


if __name__ == "__main__":
    sys.exit(main())
