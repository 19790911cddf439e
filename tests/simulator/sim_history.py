"""History features for simulator tests: what a feature pipeline sees before each transaction."""

from __future__ import annotations

from collections import defaultdict, deque

import pandas as pd

from services.common.events import Label, Transaction
from services.simulator import SimEvent, SimulatorConfig

DRIFT_CONFIG = SimulatorConfig(events=40_000, seed=7, drift_at=20_000)

TEN_MINUTES_S = 600.0
HOUR_S = 3600.0


def history_features(events: list[SimEvent]) -> pd.DataFrame:
    """Per transaction, what a feature pipeline sees from history *before* it (point in time):
    user velocity, amount against the user's mean, new country/device, merchant fraud rate
    from labels that had already arrived. One pass over the time-ordered stream."""
    user_times: dict[str, deque[float]] = defaultdict(deque)
    user_amounts: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    user_countries: dict[str, set[str]] = defaultdict(set)
    user_devices: dict[str, set[str]] = defaultdict(set)
    merchant_of: dict[str, str] = {}
    merchant_labels: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    rows = []
    for sim in events:
        event = sim.event
        if isinstance(event, Label):
            counts = merchant_labels[merchant_of[event.transaction_id]]
            counts[0] += event.is_fraud
            counts[1] += 1
            continue
        assert isinstance(event, Transaction)
        now = event.timestamp.timestamp()
        times = user_times[event.user_id]
        while times and times[0] <= now - HOUR_S:
            times.popleft()
        total, count = user_amounts[event.user_id]
        fraud_labels, labelled = merchant_labels[event.merchant_id]
        rows.append(
            {
                "transaction_id": event.transaction_id,
                "user_id": event.user_id,
                "merchant_id": event.merchant_id,
                "pattern": sim.pattern,
                "is_fraud": sim.is_fraud,
                "amount": event.amount,
                "user_txn_count_10m": sum(1 for t in times if t > now - TEN_MINUTES_S),
                "user_txn_count_1h": len(times),
                "user_has_history": float(count > 0),
                "amount_ratio_to_user_mean": event.amount / (total / count) if count else 1.0,
                "country_is_new": float(event.country not in user_countries[event.user_id]),
                "device_is_new": float(
                    event.device_id is not None and event.device_id not in user_devices[event.user_id]
                ),
                "has_device": float(event.device_id is not None),
                "hour_of_day": float(event.timestamp.hour),
                "channel_web": float(event.channel == "web"),
                "channel_app": float(event.channel == "app"),
                "merchant_fraud_rate": fraud_labels / labelled if labelled else 0.0,
                "merchant_labelled_count": float(labelled),
            }
        )
        times.append(now)
        user_amounts[event.user_id] = [total + event.amount, count + 1]
        user_countries[event.user_id].add(event.country)
        if event.device_id is not None:
            user_devices[event.user_id].add(event.device_id)
        merchant_of[event.transaction_id] = event.merchant_id
    return pd.DataFrame(rows)


MODEL_FEATURES = [
    "user_txn_count_10m",
    "user_txn_count_1h",
    "user_has_history",
    "amount_ratio_to_user_mean",
    "country_is_new",
    "device_is_new",
    "has_device",
    "hour_of_day",
    "channel_web",
    "channel_app",
    "merchant_fraud_rate",
    "merchant_labelled_count",
    "amount",
]
