"""Batch, edge, explanation and data-version tests: one small simulator set, one real
``rtml pipeline run --local`` for the whole folder (a second one only in test_dataset_version)."""

from __future__ import annotations

from tests.trained_model import EVENTS, MAX_EPOCHS, Trained, cli

__all__ = ["EVENTS", "MAX_EPOCHS", "Trained", "cli"]
