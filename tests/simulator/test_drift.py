"""With drift_at, fraud patterns change exactly there: the statistics shift with clear margins, a model
trained before is measurably worse after, and a model retrained after drift recovers."""

from __future__ import annotations

import pandas as pd
from sim_history import DRIFT_CONFIG, MODEL_FEATURES
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score
from threadpoolctl import threadpool_limits

from services.simulator import SimEvent

OLD_PATTERNS = {"account_takeover", "unusual_amount", "new_country_device", "risky_merchant"}
NEW_PATTERNS = {"card_testing", "stealth_takeover", "merchant_ring"}


def _split(features: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    assert DRIFT_CONFIG.drift_at is not None
    return features.iloc[: DRIFT_CONFIG.drift_at], features.iloc[DRIFT_CONFIG.drift_at :]


def test_new_patterns_start_exactly_at_drift_at(drift_events: list[SimEvent]) -> None:
    patterns = [s.pattern for s in drift_events if s.topic == "rtml.transactions"]
    before, after = patterns[: DRIFT_CONFIG.drift_at], patterns[DRIFT_CONFIG.drift_at :]
    assert set(before) - {"legit"} == OLD_PATTERNS
    assert set(after) >= NEW_PATTERNS
    assert patterns[DRIFT_CONFIG.drift_at :].index("merchant_ring") < 1_000


def test_fraud_statistics_change_at_drift(drift_features: pd.DataFrame) -> None:
    before, after = _split(drift_features)
    fb, fa = before[before["is_fraud"]], after[after["is_fraud"]]
    # Fraud leaves foreign countries and new devices ...
    assert fb["country_is_new"].mean() > 0.25 > 0.05 > fa["country_is_new"].mean()
    assert fb["device_is_new"].mean() > 2 * fa["device_is_new"].mean()
    # ... moves from big amounts to tiny card tests and moderate ones ...
    assert (fa["amount"] < 5).mean() > 0.15 > 0.03 > (fb["amount"] < 5).mean()
    assert (fb["amount_ratio_to_user_mean"] > 5).mean() > 2 * (fa["amount_ratio_to_user_mean"] > 5).mean()
    # ... and from one set of merchants to another.
    old_risky = set(before[before["pattern"] == "risky_merchant"]["merchant_id"])
    new_risky = set(after[after["pattern"] == "merchant_ring"]["merchant_id"])
    assert not old_risky & new_risky
    assert fb["merchant_id"].isin(old_risky).mean() > 0.15 > 0.02 > fa["merchant_id"].isin(old_risky).mean()
    assert fa["merchant_id"].isin(new_risky).mean() > 0.15 > 0.02 > fb["merchant_id"].isin(new_risky).mean()
    # The overall fraud rate stays put: it is the patterns that drift, not the volume.
    assert abs(fb.shape[0] / len(before) - fa.shape[0] / len(after)) < 0.005


def _fit(train: pd.DataFrame) -> HistGradientBoostingClassifier:
    model = HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=0)
    # One OpenMP thread: on a shared two-core machine, more threads spin and run 30x slower.
    with threadpool_limits(1):
        return model.fit(train[MODEL_FEATURES], train["is_fraud"])


def _average_precision(model: HistGradientBoostingClassifier, test: pd.DataFrame) -> float:
    return float(average_precision_score(test["is_fraud"], model.predict_proba(test[MODEL_FEATURES])[:, 1]))


def test_model_trained_before_drift_is_worse_after_and_retraining_recovers(drift_features: pd.DataFrame) -> None:
    before, after = _split(drift_features)
    # The first hours are a cold start (every user is new); train past them.
    old_train, old_test = before.iloc[4_000:14_000], before.iloc[14_000:]
    new_train, new_test = after.iloc[:12_000], after.iloc[12_000:]
    old_model = _fit(old_train)
    old_on_old = _average_precision(old_model, old_test)
    old_on_new = _average_precision(old_model, new_test)
    new_on_new = _average_precision(_fit(new_train), new_test)
    assert old_on_old > 0.5
    assert old_on_new < old_on_old - 0.15
    assert new_on_new > old_on_new + 0.1
