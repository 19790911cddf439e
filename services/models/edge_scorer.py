"""Standalone RTML edge scorer: the fraud MLP with int8 weights, in one file that needs only numpy.

Copied verbatim next to ``edge_model.npz`` and ``manifest.json`` by
``rtml models export --format edge``; it imports nothing from RTML, Feast or Kafka.

    from score_edge import EdgeScorer
    scorer = EdgeScorer("edge-v0002")
    scorer.predict({"txn_amount": 950.0, "txn_device_is_new": 1.0, ...})   # -> fraud probability
    scorer.decide(p)                                                      # -> approve | review | decline

Command line: ``python score_edge.py DIR`` reads one JSON object of feature values per line on
stdin and writes one ``{"fraud_probability", "decision"}`` object per line. Features left out
take the manifest's defaults; an unknown feature name is an error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

FORMAT = "rtml-edge/1"


class EdgeScorer:
    def __init__(self, directory: str | Path) -> None:
        root = Path(directory)
        self.manifest = json.loads((root / "manifest.json").read_text())
        if self.manifest.get("format") != FORMAT:
            raise ValueError(f"{root}: format {self.manifest.get('format')!r}, this scorer reads {FORMAT}")
        self.features: list[str] = list(self.manifest["features"])
        self.index = {name: i for i, name in enumerate(self.features)}
        defaults = self.manifest.get("feature_defaults", {})
        self.defaults = np.array([float(defaults.get(name, 0.0)) for name in self.features], dtype=np.float32)
        with np.load(root / self.manifest["weights_file"]) as packed:
            self.mean = packed["input_mean"].astype(np.float32)
            self.std = packed["input_std"].astype(np.float32)
            # int8 weights with one scale per output unit, dequantized once here.
            self.layers = [
                (
                    (packed[f"w{i}_q"].astype(np.float32) * packed[f"w{i}_scale"][:, None]).T.copy(),
                    packed[f"b{i}"].astype(np.float32),
                )
                for i in range(int(self.manifest["layers"]))
            ]
        self.review = float(self.manifest["thresholds"]["review"])
        self.decline = float(self.manifest["thresholds"]["decline"])

    def vector(self, values: Mapping[str, float]) -> np.ndarray:
        unknown = [name for name in values if name not in self.index]
        if unknown:
            raise KeyError(f"unknown features {sorted(unknown)}; this model reads {self.features}")
        row = self.defaults.copy()
        for name, value in values.items():
            row[self.index[name]] = float(value)
        return row

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """float (n, n_features) in manifest feature order -> (n,) fraud probabilities."""
        h = (np.asarray(matrix, dtype=np.float32) - self.mean) / self.std
        for i, (weight, bias) in enumerate(self.layers):
            h = h @ weight + bias
            if i < len(self.layers) - 1:
                np.maximum(h, 0.0, out=h)
        logits = h[:, 0].astype(np.float64)
        return 1.0 / (1.0 + np.exp(-logits))

    def predict(self, values: Mapping[str, float]) -> float:
        return float(self.predict_matrix(self.vector(values)[None, :])[0])

    def predict_many(self, rows: Iterable[Mapping[str, float]]) -> np.ndarray:
        return self.predict_matrix(np.stack([self.vector(r) for r in rows]))

    def decide(self, probability: float) -> str:
        if probability >= self.decline:
            return "decline"
        if probability >= self.review:
            return "review"
        return "approve"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python score_edge.py DIR  (feature JSON objects on stdin, one per line)", file=sys.stderr)
        return 2
    scorer = EdgeScorer(argv[1])
    for line in sys.stdin:
        if not line.strip():
            continue
        p = scorer.predict(json.loads(line))
        sys.stdout.write(json.dumps({"fraud_probability": p, "decision": scorer.decide(p)}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
