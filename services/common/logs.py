"""Structured logging: one JSON object per line (or a readable line with RTML_LOG_FORMAT=console)."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from services.common.settings import Settings

_CONSOLE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# What every LogRecord carries; anything else on a record came from ``extra=`` and is context.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class ConsoleFormatter(logging.Formatter):
    """A readable line that keeps the structured context (``extra=``) as key=value pairs, so a
    console log says which stage or partition a line is about, as the JSON one does."""

    def __init__(self) -> None:
        super().__init__(_CONSOLE_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS and not k.startswith("_")}
        if not context:
            return line
        pairs = " ".join(f"{k}={v}" for k, v in context.items())
        head, newline, rest = line.partition("\n")  # keep a traceback below the context
        return f"{head} [{pairs}]{newline}{rest}"


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
        handler.setFormatter(ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # Client libraries are chatty at INFO about every reconnect; their warnings still show.
    for noisy in ("kafka", "urllib3", "botocore", "feast"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger(f"rtml.{service}")
