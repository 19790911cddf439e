"""Structured logging: one JSON object per line (or a readable line with RTML_LOG_FORMAT=console)."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from services.common.settings import Settings

_CONSOLE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(settings: Settings, service: str) -> logging.Logger:
    """Route every logger to stderr in the chosen format, tagged with the service name."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
                static_fields={"service": service},
            )
        )
    else:
        handler.setFormatter(logging.Formatter(_CONSOLE_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # Client libraries are chatty at INFO about every reconnect; their warnings still show.
    for noisy in ("kafka", "urllib3", "botocore", "feast"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger(f"rtml.{service}")
