"""Edge export of a torch model version: int8 weights, a manifest and the standalone scorer.

Output directory::

    edge_model.npz   compressed: per Linear layer int8 weights + one float32 scale per output unit
                     + float32 bias, and the input mean/std the MLP standardises with
    manifest.json    format, model version, feature order and defaults, thresholds, layer count
    score_edge.py    services/models/edge_scorer.py, copied: numpy only, no RTML/Feast/Kafka

Quantization is symmetric per output channel (scale = max|w| / 127), the weight half of PyTorch's
dynamic int8 quantization; activations stay float32, which keeps the accuracy loss negligible on a
network this small and lets the scorer run with numpy alone.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from services.models.artifacts import ArtifactError, TorchScorer
from services.registry import ModelVersion

EDGE_FORMAT: Final = "rtml-edge/1"
WEIGHTS_FILE: Final = "edge_model.npz"
MANIFEST_FILE: Final = "manifest.json"
SCORER_FILE: Final = "score_edge.py"
SCORER_SOURCE: Final = Path(__file__).with_name("edge_scorer.py")


class EdgeExportError(ValueError):
    """The version cannot be exported for the edge; the message says why."""


def quantize_rows(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output row: ``weight ~= q * scale[:, None]``."""
    peak = np.abs(weight).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(weight / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def _linear_layers(scorer: TorchScorer) -> list[tuple[np.ndarray, np.ndarray]]:
    from torch import nn

    layers = [m for m in scorer.module.body if isinstance(m, nn.Linear)]
    return [(m.weight.detach().numpy().astype(np.float32), m.bias.detach().numpy().astype(np.float32)) for m in layers]


@dataclass(frozen=True)
class EdgeExport:
    directory: Path
    edge_bytes: int
    full_bytes: int

    def summary(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "edge_bytes": self.edge_bytes,
            "full_bytes": self.full_bytes,
            "size_ratio": round(self.edge_bytes / self.full_bytes, 4) if self.full_bytes else None,
        }


def artifact_bytes(directory: Path, names: tuple[str, ...]) -> int:
    return sum((directory / name).stat().st_size for name in names if (directory / name).is_file())


def export_edge(record: ModelVersion, scorer: Any, artifact_dir: Path, out_dir: Path) -> EdgeExport:
    """Write the edge artifact of ``record`` (loaded as ``scorer`` from ``artifact_dir``) into ``out_dir``."""
    if record.kind != "torch" or not isinstance(scorer, TorchScorer):
        raise EdgeExportError(
            f"{record.name} {record.version} is a {record.kind} model; the edge export takes a torch (MLP) version "
            "(see `rtml models list`)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {
        "input_mean": scorer.module.input_mean.detach().numpy().astype(np.float32),
        "input_std": scorer.module.input_std.detach().numpy().astype(np.float32),
    }
    layers = _linear_layers(scorer)
    for i, (weight, bias) in enumerate(layers):
        arrays[f"w{i}_q"], arrays[f"w{i}_scale"] = quantize_rows(weight)
        arrays[f"b{i}"] = bias
    np.savez_compressed(out_dir / WEIGHTS_FILE, **arrays)  # type: ignore[arg-type]
    manifest = {
        "format": EDGE_FORMAT,
        "model": record.name,
        "version": record.version,
        "weights_file": WEIGHTS_FILE,
        "layers": len(layers),
        "activation": "relu",
        "output": "sigmoid",
        "quantization": "int8 weights, symmetric per output unit; float32 activations",
        "features": list(record.features),
        "feature_defaults": {name: float(record.feature_defaults.get(name, 0.0)) for name in record.features},
        "thresholds": record.thresholds.model_dump(),
        "source_metrics": {k: v for k, v in record.metrics.items() if k in ("pr_auc", "roc_auc")},
        "dataset_hash": record.data_window.dataset_hash,
    }
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.copyfile(SCORER_SOURCE, out_dir / SCORER_FILE)
    from services.models.artifacts import MANIFEST, TORCH_ARCH_FILE, TORCH_WEIGHTS_FILE

    full = artifact_bytes(artifact_dir, (MANIFEST, TORCH_ARCH_FILE, TORCH_WEIGHTS_FILE))
    if not full:
        raise ArtifactError(f"{artifact_dir} holds no torch artifact files")
    return EdgeExport(out_dir, artifact_bytes(out_dir, (WEIGHTS_FILE, MANIFEST_FILE)), full)


def single_row_latency_us(predict: Any, rows: list[dict[str, float]], repeats: int = 1) -> dict[str, float]:
    """p50/p95 microseconds of one ``predict(row)`` call (feature dict in, probability out)."""
    predict(rows[0])  # warm-up
    timings = []
    for _ in range(repeats):
        for row in rows:
            start = time.perf_counter()
            predict(row)
            timings.append((time.perf_counter() - start) * 1e6)
    return {"p50_us": float(np.percentile(timings, 50)), "p95_us": float(np.percentile(timings, 95))}
