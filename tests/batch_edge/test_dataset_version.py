"""Data versions: every run records its snapshot's content hash and location, and
``rtml pipeline run --local --dataset-version H`` rebuilds the same models with the same metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.dataset import load_snapshot
from tests.batch_edge.conftest import MAX_EPOCHS, Trained, cli

# Wall-clock scoring latency is measured, not learned: the one family of metrics that may differ.
TIMED = "latency_"

pytestmark = pytest.mark.timeout(1500)  # the shared pipeline run(s) on two shared cores


def learned_metrics(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if not k.startswith(TIMED)}


def test_run_records_content_hash_and_snapshot_location(trained: Trained) -> None:
    for version in trained.versions():
        window = version.data_window
        assert len(window.dataset_hash) == 16 and window.dataset_uri.endswith(f"/{window.dataset_hash}/dataset.parquet")
        assert Path(window.dataset_uri.removeprefix("file://")).is_file()
        snapshot = load_snapshot(window.dataset_hash, trained.settings.registry_uri, "")
        assert len(snapshot.frame) == window.rows


def test_rebuild_from_dataset_version_gives_identical_metrics(trained: Trained) -> None:
    first = {v.kind: v for v in trained.versions()}
    hashes = {v.data_window.dataset_hash for v in first.values()}
    assert len(hashes) == 1
    (dataset_hash,) = hashes
    # The offline store changes after the first run; the rebuild must not read it at all.
    offline = trained.settings.data_dir / "feast" / "offline"
    moved = {p: p.with_name(p.name + ".aside") for p in offline.iterdir()}
    assert moved, f"no offline tables under {offline}"
    for src, dst in moved.items():
        src.rename(dst)
    try:
        code = cli(trained.settings, ["pipeline", "run", "--local", "--dataset-version", dataset_hash,
                                      "--max-epochs", MAX_EPOCHS])
    finally:
        for src, dst in moved.items():
            dst.rename(src)
    assert code == 0
    rebuilt = {v.kind: v for v in trained.versions() if v.version not in {f.version for f in first.values()}}
    assert set(rebuilt) == set(first) == {"sklearn", "torch"}
    for kind, original in first.items():
        again = rebuilt[kind]
        assert again.data_window == original.data_window
        assert learned_metrics(again.metrics) == learned_metrics(original.metrics), kind
        assert again.extra["feature_importance"] == original.extra["feature_importance"], kind
        assert again.thresholds == original.thresholds, kind


def test_unknown_dataset_version_names_it(trained: Trained) -> None:
    with pytest.raises(FileNotFoundError, match="dataset version '0000deadbeef0000' not found"):
        load_snapshot("0000deadbeef0000", trained.settings.registry_uri, "")
