"""Data tests: the population, rhythm and habits are realistic, and each fraud pattern leaves a trace
in features computed from user and merchant history (what makes it learnable)."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from services.simulator import SimEvent, SimulatorConfig, generate, to_frames


@pytest.fixture(scope="module")
def frames(drift_events: list[SimEvent]) -> tuple[pd.DataFrame, pd.DataFrame]:
    return to_frames(drift_events)


def test_fraud_rate_is_between_one_and_two_percent(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    txns, _ = frames
    half = len(txns) // 2
    for part in (txns, txns.iloc[:half], txns.iloc[half:]):
        assert 0.01 <= part["is_fraud"].mean() <= 0.02
    default = [s for s in generate(SimulatorConfig(events=20_000, seed=7)) if s.topic == "rtml.transactions"]
    assert 0.01 <= sum(s.is_fraud for s in default) / len(default) <= 0.02


def test_default_run_spans_one_to_two_days() -> None:
    stamps = [s.event.timestamp for s in generate(SimulatorConfig()) if s.topic == "rtml.transactions"]
    assert len(stamps) == 10_000
    assert timedelta(days=1) <= stamps[-1] - stamps[0] <= timedelta(days=2)


def test_thousands_of_users_and_hundreds_of_merchants(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    txns, _ = frames
    assert txns["user_id"].nunique() > 1_900
    assert txns["merchant_id"].nunique() > 250


def test_fewer_transactions_at_night(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    legit = frames[0][~frames[0]["is_fraud"]]
    per_hour = legit["timestamp"].dt.hour.value_counts()
    assert per_hour.loc[[2, 3, 4]].sum() * 5 < per_hour.loc[[17, 18, 19]].sum()


def test_users_have_habits(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    legit = frames[0][~frames[0]["is_fraud"]]
    regulars = legit.groupby("user_id").filter(lambda g: len(g) >= 10)
    by_user = regulars.groupby("user_id")

    def modal_share(column: str) -> float:
        return float(by_user[column].agg(lambda s: s.value_counts(normalize=True).iloc[0]).mean())

    assert modal_share("country") > 0.9
    assert modal_share("channel") > 0.6
    top_merchants = by_user["merchant_id"].agg(lambda s: s.value_counts(normalize=True).iloc[:6].sum())
    assert top_merchants.mean() > 0.6
    devices = regulars[regulars["device_id"].notna()].groupby("user_id")["device_id"].nunique()
    assert devices.max() <= 3
    scale = by_user["amount"].median()
    assert scale.quantile(0.9) > 2 * scale.quantile(0.1)  # big and small spenders


def test_merchant_categories_have_different_amount_scales(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    legit = frames[0][~frames[0]["is_fraud"]]
    per_merchant = legit.groupby("merchant_id")["amount"].median()
    assert per_merchant.quantile(0.95) > 5 * per_merchant.quantile(0.25)


def _pattern(features: pd.DataFrame, name: str) -> pd.DataFrame:
    part = features[features["pattern"] == name]
    assert len(part) >= 20, f"too few {name} transactions to judge"
    return part


def test_each_fraud_pattern_is_visible_in_history_features(drift_features: pd.DataFrame) -> None:
    f = drift_features
    legit = f[(f["pattern"] == "legit") & (f["user_has_history"] == 1)]
    # Account takeover: a burst within minutes, from a device the user never used.
    ato = _pattern(f, "account_takeover")
    in_burst = (ato["user_txn_count_10m"] >= 1).mean()
    assert in_burst > 0.6 and in_burst > 8 * (legit["user_txn_count_10m"] >= 1).mean()
    assert ato.groupby("user_id")["device_is_new"].max().mean() > 0.9
    # Unusual amount: far above the user's usual.
    unusual = _pattern(f, "unusual_amount")
    assert unusual["amount_ratio_to_user_mean"].median() > 10 * legit["amount_ratio_to_user_mean"].median()
    # New country or device.
    novel = _pattern(f, "new_country_device")
    first_of_incident = novel.groupby("user_id").head(1)
    new_either = (first_of_incident["country_is_new"] + first_of_incident["device_is_new"]) > 0
    legit_new_either = ((legit["country_is_new"] + legit["device_is_new"]) > 0).mean()
    assert new_either.mean() > 0.9 > 5 * legit_new_either
    # Risky merchants: their fraud rate is many times the overall one.
    for name in ("risky_merchant", "merchant_ring"):
        merchants = set(_pattern(f, name)["merchant_id"])
        at_them = f[f["merchant_id"].isin(merchants)]
        assert at_them["is_fraud"].mean() > 5 * f["is_fraud"].mean()
    # Card testing: tiny amounts in a quick burst.
    testing = _pattern(f, "card_testing")
    assert (testing["amount"] < 5).all()
    assert (testing["user_txn_count_10m"] >= 1).mean() > 8 * (legit["user_txn_count_10m"] >= 1).mean()
    # Stealth takeover: online, moderately above the user's usual.
    stealth = _pattern(f, "stealth_takeover")
    assert (stealth["channel_web"] + stealth["channel_app"]).min() == 1
    assert stealth["amount_ratio_to_user_mean"].median() > 1.5 * legit["amount_ratio_to_user_mean"].median()
