"""The console log line keeps what a JSON line would carry from ``extra=``."""

from __future__ import annotations

import logging
import sys

from services.common.logs import ConsoleFormatter


def record(msg: str, exc: bool = False, **extra: object) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            info = sys.exc_info()
    rec = logging.LogRecord("services.feature.rebuild", logging.INFO, __file__, 1, msg, None, info)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_context_follows_the_message_and_a_traceback_stays_below() -> None:
    fmt = ConsoleFormatter()
    line = fmt.format(record("partitions assigned", stage="user", partitions=["rtml.transactions/0"]))
    assert line.endswith("services.feature.rebuild: partitions assigned [stage=user partitions=['rtml.transactions/0']]")
    assert fmt.format(record("plain")).endswith(": plain")
    head, _, rest = fmt.format(record("failed", exc=True, records=3)).partition("\n")
    assert head.endswith("failed [records=3]") and rest.startswith("Traceback") and "ValueError: boom" in rest
