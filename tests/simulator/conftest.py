"""Shared simulator fixtures: one generated run with drift, and history features computed from it."""

from __future__ import annotations

import pandas as pd
import pytest
from sim_history import DRIFT_CONFIG, history_features

from services.simulator import SimEvent, generate


@pytest.fixture(scope="session")
def drift_events() -> list[SimEvent]:
    return list(generate(DRIFT_CONFIG))


@pytest.fixture(scope="session")
def drift_features(drift_events: list[SimEvent]) -> pd.DataFrame:
    return history_features(drift_events)
