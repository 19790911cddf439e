"""`rtml pipeline run --local` on a few hundred thousand simulated transactions, as a user runs it.

The shared trained models (tests/trained_model.py) come from 20k transactions so that every test
area can use them quickly; this is the one run at the size the training issue asks for. Its wall
time is a benchmark figure (docs/benchmarks.md, "Training pipeline"), not an assertion here.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from services.common.broker import EmbeddedBroker
from tests.trained_model import train_on_simulation

TRANSACTIONS = 300_000
MAX_EPOCHS = "4"  # early stopping usually ends sooner; the PR-AUC bar is about the data, not the epochs


@pytest.mark.timeout(1500)  # minutes of pipeline on two cores shared with the rest of the suite
def test_a_few_hundred_thousand_transactions_train_and_promote(broker: EmbeddedBroker, tmp_path: Path) -> None:
    trained = train_on_simulation(broker, tmp_path, TRANSACTIONS, seed=11, max_epochs=MAX_EPOCHS)
    registry = trained.registry
    versions = registry.versions("fraud")
    assert {v.kind for v in versions} == {"sklearn", "torch"}
    champion = registry.champion("fraud")
    assert champion is not None
    simulated = pd.read_parquet(trained.transactions, columns=["transaction_id", "is_fraud"])
    assert len(simulated) == TRANSACTIONS
    base_rate = float(simulated["is_fraud"].mean())
    for version in versions:
        # Labelled rows in the window: every transaction but the ~10 % whose label never arrives.
        assert version.data_window.rows > 0.8 * TRANSACTIONS, version.data_window
        assert version.metrics["test_rows"] > 0.1 * TRANSACTIONS
    print(f"\nAT SCALE {TRANSACTIONS:,} transactions, base rate {base_rate:.4f}: " + ", ".join(
        f"{v.version} {v.kind} rows {v.data_window.rows:,} PR-AUC {v.metrics['pr_auc']:.3f}" for v in versions))
    assert champion.metrics["pr_auc"] > 20 * base_rate, (champion.metrics, base_rate)
