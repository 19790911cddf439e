"""Code tests of the artifact format: both kinds round-trip through the real registry; broken ones fail clearly."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_info

from services.models.artifacts import ArtifactError, SklearnScorer, TorchScorer, load_model, load_scorer, save_scorer
from services.models.mlp import FraudMLP, MLPArchitecture
from services.registry import ModelRegistry, ModelVersion, Thresholds

N_FEATURES = 4


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, N_FEATURES)).astype(np.float32)
    return x, (x[:, 0] + 0.3 * rng.normal(size=300) > 1.0).astype(int)


def _sklearn(sample: tuple[np.ndarray, np.ndarray]) -> SklearnScorer:
    return SklearnScorer(HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(*sample))


def _torch() -> TorchScorer:
    torch.manual_seed(0)
    module = FraudMLP(MLPArchitecture(n_features=N_FEATURES, hidden=[8]))
    module.set_scaling(torch.full((N_FEATURES,), 0.5), torch.full((N_FEATURES,), 2.0))
    return TorchScorer(module)


def _record(kind: str) -> ModelVersion:
    return ModelVersion(
        name="fraud",
        version="",
        kind=kind,
        created_at=datetime.now(UTC),
        features=[f"f{i}" for i in range(N_FEATURES)],
        thresholds=Thresholds(review=0.5, decline=0.9),
    )


@pytest.mark.parametrize("kind", ["sklearn", "torch"])
def test_scorer_round_trips_through_the_registry(kind: str, sample: tuple, tmp_path: Path) -> None:
    scorer = _sklearn(sample) if kind == "sklearn" else _torch()
    assert save_scorer(scorer, tmp_path / "art") == kind
    registry = ModelRegistry((tmp_path / "reg").as_uri())
    record = registry.register(_record(kind), tmp_path / "art")

    loaded = load_model(registry, record, tmp_path / "cache")

    x = sample[0][:17]
    expected, got = scorer.predict_proba(x), loaded.predict_proba(x)
    assert got.shape == (17,)
    assert loaded.kind == kind
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert ((got >= 0) & (got <= 1)).all()
    # Second load comes from the cache directory.
    np.testing.assert_allclose(load_model(registry, record, tmp_path / "cache").predict_proba(x), expected, rtol=1e-6)


def test_kind_mismatch_is_named(sample: tuple, tmp_path: Path) -> None:
    save_scorer(_sklearn(sample), tmp_path)
    with pytest.raises(ArtifactError, match="kind 'sklearn', the record says 'torch'"):
        load_scorer(tmp_path, "torch")


def test_missing_manifest_and_corrupt_weights_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"scorer\.json is missing"):
        load_scorer(tmp_path, "torch")
    save_scorer(_torch(), tmp_path)
    (tmp_path / "weights.pt").write_bytes(b"not a state dict")
    with pytest.raises(ArtifactError, match="could not be loaded"):
        load_scorer(tmp_path, "torch")


def test_feature_count_must_match_the_record(sample: tuple, tmp_path: Path) -> None:
    save_scorer(_sklearn(sample), tmp_path / "art")
    registry = ModelRegistry((tmp_path / "reg").as_uri())
    record = registry.register(_record("sklearn").model_copy(update={"features": ["only_one"]}), tmp_path / "art")
    with pytest.raises(ArtifactError, match="takes 4 features, record lists 1"):
        load_model(registry, record, tmp_path / "cache")


def test_sklearn_scorer_predicts_on_one_openmp_thread_in_any_thread(sample: tuple) -> None:
    """OpenMP's thread count is per thread: the inference service predicts on its scoring thread,
    not where the model was loaded, and a 2-thread team for one row cost 5x the CPU."""
    scorer = _sklearn(sample)

    def openmp_threads_after_predict() -> set[int]:
        scorer.predict_proba(sample[0][:1])
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "openmp"}

    with ThreadPoolExecutor(max_workers=1) as scoring_thread:
        seen = scoring_thread.submit(openmp_threads_after_predict).result()
    assert seen == {1}
