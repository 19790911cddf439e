"""Importing Feast without the torch it does not need."""

from __future__ import annotations

import sys


def feast_without_torch() -> None:
    """Mark torch absent before Feast is imported. Feast's offline-store module imports torch eagerly
    (``feast/torch_wrapper.py``, for tensor conversions RTML never asks for): 1.5-3.5 s of CPU at
    every start of a process that uses Feast, such as the feature service after a crash
    (tests/resilience/test_consumer_crashes.py) or a pipeline's build-dataset step. Feast catches the
    ImportError and records torch as unavailable. Call it only in a process of its own that needs no
    torch: code importing Feast in-process (tests, tools) may well need torch."""
    if "torch" not in sys.modules:
        sys.modules["torch"] = None  # type: ignore[assignment]  # None in sys.modules: import raises ImportError
