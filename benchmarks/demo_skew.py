"""Train/serve skew after a demo run (``python -m benchmarks.demo_skew --data-dir DIR``).

Reads what the inference service served (``served-predictions.parquet``, written by ``rtml demo``),
rebuilds the same transactions' model inputs the way training does (Feast offline store, point in
time, ``request_features_frame``) from the run's own offline store, and prints, per model input,
how often and how far the served value differs; then every champion's PR-AUC on the post-swap
requests fed the served vectors and fed the point-in-time vectors. Equal figures mean the gap
between a model's live and test quality is not skew.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from pipelines.dataset import point_in_time_features
from services.batch.scoring import model_matrix
from services.common.settings import load_settings
from services.demo.config import DemoConfig
from services.demo.orchestrator import MODEL_NAME
from services.features.request import request_features_frame
from services.models.artifacts import load_model
from services.registry import ModelRegistry
from services.simulator import SimulatorConfig, generate, to_frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the demo's data dir (holds the registry)")
    args = parser.parse_args()
    settings = load_settings(data_dir=args.data_dir)
    served = pd.read_parquet(args.data_dir / "served-predictions.parquet")
    demo = DemoConfig(data_dir=args.data_dir)
    stream = generate(
        SimulatorConfig(events=demo.events, seed=demo.seed, drift_at=demo.drift_at, users=demo.users,
                        merchants=demo.merchants)
    )
    transactions, _ = to_frames(stream)
    txns = transactions.set_index("transaction_id").loc[served["transaction_id"]].reset_index()
    stored = point_in_time_features(settings, txns.drop(columns=["is_fraud", "pattern"]))
    offline = request_features_frame(txns, stored)
    missing = [[] for _ in range(len(txns))]

    registry = ModelRegistry(settings.registry_uri, settings.s3_endpoint)
    history = [h["version"] for h in registry.history(MODEL_NAME)]
    champions = [registry.get(MODEL_NAME, v) for v in dict.fromkeys(history)]
    others = [v for v in registry.versions(MODEL_NAME) if v.version not in history]
    names = champions[-1].features
    print(f"{len(served):,} served requests; champions {[f'{c.version} ({c.kind})' for c in champions]}")
    print(f"{'input':<34} {'differs':>8} {'median |d|':>11} {'served mean':>12} {'offline mean':>13}")
    for name in names:
        live = served[f"f_{name}"].astype(float).to_numpy()
        pit = offline[name].astype(float).to_numpy()
        differs = ~np.isclose(live, pit, rtol=1e-5, atol=1e-6, equal_nan=True)
        med = float(np.median(np.abs(live - pit)[differs])) if differs.any() else 0.0
        print(f"{name:<34} {differs.mean():>8.1%} {med:>11.4g} {np.nanmean(live):>12.4g} {np.nanmean(pit):>13.4g}")

    truth = served["is_fraud"].astype(bool).to_numpy()
    print("\nPost-swap requests; candidates that were never champion are rescored too.")
    print(f"{'model':<22} {'rows':>6} {'frauds':>6} {'PR-AUC served':>14} {'PR-AUC offline':>15} {'as logged':>10}")
    for record in [*champions, *others]:
        after = (served["model_version"] == champions[-1].version).to_numpy()
        scorer = load_model(registry, record, args.data_dir / "demo-cache")
        live_vectors = pd.DataFrame({m: served[f"f_{m}"].astype(float) for m in record.features})
        on_served = np.asarray(scorer.predict_proba(model_matrix(record, live_vectors, missing))).reshape(-1)
        on_offline = np.asarray(scorer.predict_proba(model_matrix(record, offline, missing))).reshape(-1)
        logged = served["fraud_probability"].to_numpy()
        own = (served["model_version"] == record.version).to_numpy() & after
        print(
            f"{record.version + ' (' + record.kind + ')':<22} {int(after.sum()):>6} {int(truth[after].sum()):>6}"
            f" {average_precision_score(truth[after], on_served[after]):>14.4f}"
            f" {average_precision_score(truth[after], on_offline[after]):>15.4f}"
            f" {average_precision_score(truth[own], logged[own]) if own.any() else float('nan'):>10.4f}"
        )


if __name__ == "__main__":
    main()
