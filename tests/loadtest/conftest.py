"""Fixtures for the load tests: the real inference service exactly as tests/inference starts it."""

from __future__ import annotations

from inference.conftest import TOKEN, RunningService, service

__all__ = ["TOKEN", "RunningService", "service"]
