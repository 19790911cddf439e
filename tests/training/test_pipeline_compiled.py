"""The checked-in compiled pipeline is current and loads back with the KFP SDK."""

from __future__ import annotations

from pathlib import Path

import yaml
from kfp import components

from pipelines.runner import COMPILED_PATH, compile_pipeline
from services.common.settings import Settings

PARAMETERS = {"transactions_path", "labels_path", "window_start", "window_end", "dataset_version", "seed", "margin",
              "latency_budget_ms", "kafka_bootstrap", "registry_uri", "feast_repo", "feast_store_yaml"}


def test_checked_in_yaml_is_not_stale(tmp_path: Path) -> None:
    fresh = compile_pipeline(tmp_path / "rtml_training.yaml", Settings.model_fields["training_image"].default)
    assert yaml.safe_load(fresh.read_text()) == yaml.safe_load(COMPILED_PATH.read_text()), (
        "pipelines/compiled/rtml_training.yaml is stale: run `rtml pipeline compile`"
    )


def test_compiled_yaml_loads_back_with_image_and_parameters() -> None:
    pipeline = components.load_component_from_file(str(COMPILED_PATH))
    assert pipeline.name == "rtml-training"
    assert set(pipeline.component_spec.inputs) >= PARAMETERS
    spec = yaml.safe_load(COMPILED_PATH.read_text())
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {"rtml-training:latest"}
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) >= {"build-dataset", "validate-data", "featurize", "train-sklearn", "train-torch", "gate-and-register"}
    assert tasks["build-dataset"]["retryPolicy"]["maxRetryCount"] == 2
