"""Load-test scenarios: which tagged tasks run and how the number of users changes over time."""

from __future__ import annotations

from typing import Final

# scenario -> the Locust task tags it runs (loadtests/locustfile.py tags its tasks with these names)
SCENARIOS: Final = {"steady": "steady", "spike": "spike", "batch": "batch"}
SPIKE_WINDOW: Final = (0.4, 0.7)  # share of the run time during which a spike scenario runs at full users
SPIKE_BASE_SHARE: Final = 0.25  # users before and after the spike, as a share of --users
SCORING_SUMMARY_SUFFIX: Final = "_scoring.csv"  # written next to Locust's CSVs by the locustfile


def scenario_stage(scenario: str, elapsed_s: float, *, users: int, spawn_rate: float, run_time: float) -> tuple[int, float] | None:
    """(users wanted now, spawn rate), or None once the run time is over.

    steady and batch ramp up at the spawn rate and hold; spike ramps to a quarter of the users,
    jumps to all of them within about a second, holds, and falls back.
    """
    if elapsed_s >= run_time:
        return None
    if scenario != "spike":
        return users, spawn_rate
    start, end = SPIKE_WINDOW
    if start * run_time <= elapsed_s < end * run_time:
        return users, max(spawn_rate, float(users))
    base = max(1, round(users * SPIKE_BASE_SHARE))
    return base, spawn_rate if elapsed_s < start * run_time else max(spawn_rate, float(users))
