"""The model artifact format: how a fitted scorer is written to, and read back from, a directory.

Layout of an artifact directory::

    scorer.json          {"kind", "format_version", "n_features"} - checked before anything is loaded
    model.skops          kind "sklearn": the fitted estimator, in skops' safe (no pickle) format
    architecture.json    kind "torch": the MLP's shape, to rebuild the module
    weights.pt           kind "torch": its state_dict, read with ``weights_only=True`` (no pickle code)

Neither format executes code from the file on load, so a tampered artifact fails
with ArtifactError instead of running.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np

from services.registry import ModelRegistry, ModelVersion

FORMAT_VERSION: Final = 1
MANIFEST: Final = "scorer.json"
SKLEARN_FILE: Final = "model.skops"
TORCH_ARCH_FILE: Final = "architecture.json"
TORCH_WEIGHTS_FILE: Final = "weights.pt"
KINDS: Final = ("sklearn", "torch")

# Scoring runs on small batches inside a multi-worker server: more threads only contend.
TORCH_INFERENCE_THREADS: Final = 1  # also the OpenMP limit for the scikit-learn scorer

# Types skops may rebuild beyond its built-in safe set; nothing else is accepted.
_SKOPS_TRUSTED: Final = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


@runtime_checkable
class Scorer(Protocol):
    kind: str

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """float32 (n, n_features) in model-feature order -> (n,) fraud probabilities."""
        ...


class ArtifactError(Exception):
    """An artifact is missing, broken or of the wrong kind; the message says which and where."""


class SklearnScorer:
    """A fitted scikit-learn classifier (or Pipeline) with ``predict_proba``."""

    kind = "sklearn"

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    @property
    def n_features(self) -> int:
        return int(self.estimator.n_features_in_)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        _limit_openmp_in_this_thread()
        return np.asarray(self.estimator.predict_proba(np.asarray(features, dtype=np.float32))[:, 1], dtype=np.float64)


_openmp_limited = threading.local()


def _limit_openmp_in_this_thread() -> None:
    """OpenMP workers spinning up for a one-row batch cost more than the prediction (p95 32 ms
    against 0.4 ms median on two shared cores); same reasoning as TORCH_INFERENCE_THREADS.

    OpenMP's thread count is a per-thread setting: a limit set in the thread that loaded the model
    does not reach the inference service's scoring thread, where a one-row HistGradientBoosting
    predict then took 6.0 ms of CPU instead of 1.2 ms (docs/inference.md, "Tail latency"). So it is set once in
    every thread that predicts.
    """
    if getattr(_openmp_limited, "done", False):
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=TORCH_INFERENCE_THREADS, user_api="openmp")
    _openmp_limited.done = True


class TorchScorer:
    """A FraudMLP in eval mode; outputs sigmoid(logit)."""

    kind = "torch"

    def __init__(self, module: Any) -> None:
        import torch

        torch.set_num_threads(TORCH_INFERENCE_THREADS)
        self.module = module.eval()

    @property
    def n_features(self) -> int:
        return int(self.module.arch.n_features)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            logits = self.module(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)))
            return torch.sigmoid(logits).double().numpy()


def _n_features(scorer: Scorer) -> int:
    return int(getattr(scorer, "n_features", 0))


def save_scorer(scorer: Scorer, directory: Path) -> str:
    """Write ``scorer``'s artifact files into ``directory``; returns its kind."""
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(scorer, SklearnScorer):
        import skops.io

        skops.io.dump(scorer.estimator, directory / SKLEARN_FILE)
    elif isinstance(scorer, TorchScorer):
        import torch

        (directory / TORCH_ARCH_FILE).write_text(json.dumps(scorer.module.arch.to_dict(), indent=2))
        torch.save(scorer.module.state_dict(), directory / TORCH_WEIGHTS_FILE)
    else:
        raise ArtifactError(f"cannot save a scorer of type {type(scorer).__name__}; expected sklearn or torch")
    manifest = {"kind": scorer.kind, "format_version": FORMAT_VERSION, "n_features": _n_features(scorer)}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return scorer.kind


def _read_manifest(directory: Path, kind: str) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{directory} is not a model artifact: {MANIFEST} is missing")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path} must hold a JSON object")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: artifact format_version {manifest.get('format_version')!r}, this build reads {FORMAT_VERSION}"
        )
    if manifest.get("kind") != kind:
        raise ArtifactError(f"{path}: artifact is of kind {manifest.get('kind')!r}, the record says {kind!r}")
    return manifest


def _load_sklearn(directory: Path) -> SklearnScorer:
    import skops.io

    path = directory / SKLEARN_FILE
    if not path.is_file():
        raise ArtifactError(f"{path} is missing")
    try:
        untrusted = set(skops.io.get_untrusted_types(file=path)) - set(_SKOPS_TRUSTED)
        if untrusted:
            raise ArtifactError(f"{path} contains types that are not allowed: {sorted(untrusted)}")
        estimator = skops.io.load(path, trusted=_SKOPS_TRUSTED)
    except ArtifactError:
        raise
    except Exception as exc:
        raise ArtifactError(f"{path} could not be loaded: {exc}") from None
    if not hasattr(estimator, "predict_proba"):
        raise ArtifactError(f"{path} holds a {type(estimator).__name__}, which has no predict_proba")
    return SklearnScorer(estimator)


def _load_torch(directory: Path) -> TorchScorer:
    import torch

    from services.models.mlp import FraudMLP, MLPArchitecture

    arch_path, weights_path = directory / TORCH_ARCH_FILE, directory / TORCH_WEIGHTS_FILE
    for path in (arch_path, weights_path):
        if not path.is_file():
            raise ArtifactError(f"{path} is missing")
    try:
        arch = MLPArchitecture(**json.loads(arch_path.read_text()))
        module = FraudMLP(arch)
        module.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    except Exception as exc:
        raise ArtifactError(f"torch artifact in {directory} could not be loaded: {exc}") from None
    return TorchScorer(module)


def load_scorer(directory: Path, kind: str) -> Scorer:
    """Read the artifact in ``directory``; raise ArtifactError with the reason if it is unusable."""
    if kind not in KINDS:
        raise ArtifactError(f"unknown artifact kind {kind!r}; expected one of {', '.join(KINDS)}")
    manifest = _read_manifest(directory, kind)
    scorer: SklearnScorer | TorchScorer = _load_sklearn(directory) if kind == "sklearn" else _load_torch(directory)
    expected = manifest.get("n_features")
    if expected and scorer.n_features != expected:
        raise ArtifactError(f"{directory}: model takes {scorer.n_features} features, manifest says {expected}")
    return scorer


def load_model(registry: ModelRegistry, record: ModelVersion, cache_dir: Path) -> Scorer:
    """Download ``record``'s artifact once into ``cache_dir`` and load it."""
    target = cache_dir / record.name / record.version
    if not (target / MANIFEST).is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Download beside the target and rename, so a crash never leaves a half-written cache entry.
        staging = Path(tempfile.mkdtemp(prefix=f".{record.name}-{record.version}-", dir=cache_dir))
        try:
            registry.download(record, staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        except Exception as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, ArtifactError):
                raise
            raise ArtifactError(f"could not download {record.name} {record.version} from {record.artifact_uri}: {exc}") from exc
    scorer = load_scorer(target, record.kind)
    n_features = _n_features(scorer)
    if n_features != len(record.features):
        raise ArtifactError(
            f"{record.name} {record.version}: model takes {n_features} features, record lists {len(record.features)}"
        )
    return scorer
