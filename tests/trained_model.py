"""One real `rtml pipeline run --local` on a small simulator set, shared by every test area that
needs trained, registered models (training, batch scoring, edge export, explanations)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from services.cli.main import main
from services.common.broker import EmbeddedBroker
from services.common.events import Topics
from services.common.kafka import ensure_topics
from services.common.settings import Settings, get_settings, load_settings
from services.registry import ModelRegistry, ModelVersion
from services.simulator import SimulatorConfig, write_parquet

EVENTS = 20_000  # ~2.7k test rows: enough for stable PR-AUC comparisons, one run in ~3 min on two shared cores
MAX_EPOCHS = "6"


def cli(settings: Settings, argv: list[str]) -> int:
    """``rtml ARGV`` in this process with ``settings``' broker and data dir."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RTML_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
    mp.setenv("RTML_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    try:
        return main(argv)
    finally:
        get_settings.cache_clear()
        mp.undo()


@dataclass
class Trained:
    settings: Settings
    registry: ModelRegistry
    transactions: Path
    labels: Path

    def versions(self) -> list[ModelVersion]:
        return self.registry.versions("fraud")

    def of_kind(self, kind: str) -> ModelVersion:
        return next(v for v in self.versions() if v.kind == kind)

    def simulated(self) -> pd.DataFrame:
        return pd.read_parquet(self.transactions)


def train_on_simulation(broker: EmbeddedBroker, root: Path, events: int, seed: int, max_epochs: str) -> Trained:
    """Simulate ``events`` transactions to Parquet under ``root``, then ``rtml pipeline run --local`` on them."""
    transactions, labels = write_parquet(SimulatorConfig(events=events, seed=seed), root / "sim")
    settings = load_settings(kafka_bootstrap=broker.bootstrap, data_dir=root / "data")
    ensure_topics(settings, [Topics.MODEL_EVENTS])
    code = cli(settings, ["pipeline", "run", "--local", "--transactions", str(transactions), "--labels", str(labels),
                          "--max-epochs", max_epochs])
    assert code == 0
    return Trained(settings, ModelRegistry(settings.registry_uri), transactions, labels)


def trained_pipeline(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    yield train_on_simulation(broker, tmp_path_factory.mktemp("trained"), EVENTS, seed=3, max_epochs=MAX_EPOCHS)
