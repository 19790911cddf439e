"""`rtml pipeline run --local` end to end on simulator data with the real broker, Feast store and registry.

The run itself is the session's shared one (tests/trained_model.py): one real kfp.local run
serves these checks and the batch, edge and explanation tests.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from services.common.events import ModelEvent, decode
from tests.trained_model import Trained, cli
from tests.training.conftest import model_events


def test_run_registers_both_candidates_with_good_pr_auc(trained: Trained) -> None:
    first_run = [v for v in trained.versions() if v.data_window.dataset_hash][:2]
    assert {v.kind for v in first_run} == {"sklearn", "torch"}
    base_rate = float(trained.simulated()["is_fraud"].mean())
    best = max(v.metrics["pr_auc"] for v in first_run)
    assert best > 10 * base_rate, f"PR-AUC {best:.3f} vs base rate {base_rate:.4f}"
    for v in first_run:
        assert v.data_window.dataset_hash and v.data_window.rows > 10_000
        assert v.thresholds.review <= v.thresholds.decline
        assert set(v.reference_stats["features"]) == set(v.features)
        assert abs(sum(v.reference_stats["score"]["proportions"]) - 1) < 1e-9
        assert "Held-out test metrics" in v.model_card
    assert trained.registry.champion("fraud") is not None


def test_first_promotion_published_exactly_one_event(trained: Trained) -> None:
    # The session broker carries other tests' registries too: keep this registry's events.
    records = [
        r
        for r in model_events(trained.settings, f"test-first-run-{uuid.uuid4().hex[:6]}")
        if decode(ModelEvent, r.value).artifact_uri.startswith(trained.settings.registry_uri)
    ]
    events = [decode(ModelEvent, r.value) for r in records]
    first_champion = trained.registry.history("fraud")[0]["version"]
    assert [(e.event, e.version) for e in events][:1] == [("promoted", first_champion)]
    assert [e.version for e in events].count(first_champion) == 1
    assert records[0].key == b"fraud"


def _empty_window(trained: Trained, _: Path) -> list[str]:
    return ["--transactions", str(trained.transactions), "--labels", str(trained.labels),
            "--start", "2030-01-01T00:00:00Z"]


def _one_class(trained: Trained, tmp: Path) -> list[str]:
    labels = pd.read_parquet(trained.labels).assign(is_fraud=False)
    labels.to_parquet(tmp / "labels-one-class.parquet", index=False)
    return ["--transactions", str(trained.transactions), "--labels", str(tmp / "labels-one-class.parquet")]


def _schema_drift(trained: Trained, tmp: Path) -> list[str]:
    txns = pd.read_parquet(trained.transactions)
    txns.drop(columns=["channel"]).assign(amount=txns["amount"].astype(str)).to_parquet(tmp / "drifted.parquet", index=False)
    return ["--transactions", str(tmp / "drifted.parquet"), "--labels", str(trained.labels)]


@pytest.mark.parametrize(
    ("inputs", "step", "message"),
    [
        (_empty_window, "validate-data", "no labelled transactions in the window 2030-01-01"),
        (_one_class, "validate-data", "labels hold a single class (is_fraud=False for all"),
        # A source whose columns changed cannot be joined: build-dataset finds it as it reads (and does
        # not retry), validate-data fails the run with it.
        (_schema_drift, "validate-data",
         "transactions: column 'amount' has type object, expected number; transactions: column 'channel' is missing"),
    ],
    ids=["empty-window", "one-class", "schema-drift"],
)
def test_bad_data_fails_at_validation_and_keeps_the_champion(
    trained: Trained, capfd: pytest.CaptureFixture[str], tmp_path: Path,
    inputs: Callable[[Trained, Path], list[str]], step: str, message: str,
) -> None:
    registry = trained.registry
    before = registry.champion("fraud")
    versions_before = len(registry.versions("fraud"))
    history_before = registry.history("fraud")
    code = cli(trained.settings, ["pipeline", "run", "--local", *inputs(trained, tmp_path)])
    out = capfd.readouterr()
    assert code == 1
    assert "data validation failed: " + message in out.out + out.err
    assert step in out.out + out.err
    assert registry.champion("fraud") == before
    assert len(registry.versions("fraud")) == versions_before
    assert json.dumps(registry.history("fraud")) == json.dumps(history_before)

