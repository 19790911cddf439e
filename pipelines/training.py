"""The ``rtml-training`` pipeline (KFP v2): point-in-time dataset, validation, a scikit-learn baseline
and a PyTorch MLP, evaluation on one held-out test set, and the champion/challenger gate.

Components import the project's code inside their bodies, so the same definitions run in the
training image on Kubeflow Pipelines and with ``kfp.local.SubprocessRunner(use_venv=False)`` here.
``build_pipeline(image)`` binds every component to the image; nothing is read at import time.
No ``from __future__ import annotations`` here: KFP reads the artifact types from real annotations.
"""


from collections.abc import Callable
from typing import Any

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from pipelines.store import STORE_PARAMETERS, store_inputs

PIPELINE_NAME = "rtml-training"
NETWORK_RETRIES = 2  # steps that read Feast / object storage or write the registry and Kafka


def build_dataset(
    transactions_path: str,
    labels_path: str,
    window_start: str,
    window_end: str,
    dataset_version: str,
    backfill_features: bool,
    kafka_bootstrap: str,
    registry_uri: str,
    s3_endpoint: str,
    data_dir: str,
    feast_repo: str,
    feast_store_yaml: str,
    feast_data_uri: str,
    snapshot: Output[Dataset],
) -> None:
    """Labelled transactions joined point-in-time with FeatureService fraud_scoring, split by time."""
    from pathlib import Path

    from services.common.feast_imports import feast_without_torch

    feast_without_torch()  # this step's process needs Feast, not torch
    from pipelines import steps

    store = steps.StoreParams(
        kafka_bootstrap, registry_uri, s3_endpoint, data_dir, feast_repo, feast_store_yaml, feast_data_uri
    )
    info = steps.build_dataset(
        store,
        transactions_path=transactions_path,
        labels_path=labels_path,
        window_start=window_start,
        window_end=window_end,
        dataset_version=dataset_version,
        backfill_features=backfill_features,
        out_path=Path(snapshot.path),
    )
    snapshot.metadata.update(info)


def validate_data(
    snapshot: Input[Dataset],
    min_rows: int,
    max_null_rate: float,
    window_start: str,
    window_end: str,
    stats: Output[Metrics],
) -> None:
    """Schema, ranges, null rates, label balance and size; raises DataValidationError with the reasons."""
    from pathlib import Path

    from pipelines import steps

    found = steps.validate_dataset(
        Path(snapshot.path),
        min_rows=min_rows,
        max_null_rate=max_null_rate,
        window_start=window_start,
        window_end=window_end,
        source_problems=snapshot.metadata.get("source_problems"),
    )
    for name, value in found.items():
        stats.log_metric(name, value)


def featurize(
    snapshot: Input[Dataset], train: Output[Dataset], validation: Output[Dataset], test: Output[Dataset]
) -> None:
    """Model input vectors per split, from the same function the inference service uses."""
    from pathlib import Path

    from pipelines import steps

    counts = steps.featurize(
        Path(snapshot.path), {"train": Path(train.path), "validation": Path(validation.path), "test": Path(test.path)}
    )
    for artifact, split in ((train, "train"), (validation, "validation"), (test, "test")):
        artifact.metadata["rows"] = counts[split]


def train_sklearn(train: Input[Dataset], seed: int, model: Output[Model]) -> None:
    """Gradient-boosted trees baseline."""
    from pathlib import Path

    from pipelines import steps

    model.metadata.update(steps.train_sklearn(Path(train.path), Path(model.path), seed))


def train_torch(train: Input[Dataset], validation: Input[Dataset], seed: int, max_epochs: int, model: Output[Model]) -> None:
    """MLP with a weighted loss for the rare class and early stopping on validation PR-AUC."""
    from pathlib import Path

    from pipelines import steps

    model.metadata.update(
        steps.train_torch(Path(train.path), Path(validation.path), Path(model.path), seed, max_epochs)
    )


def evaluate_model(
    model: Input[Model],
    train: Input[Dataset],
    validation: Input[Dataset],
    test: Input[Dataset],
    seed: int,
    metrics: Output[Metrics],
    classification: Output[ClassificationMetrics],
    report: Output[HTML],
    evaluation: Output[Artifact],
) -> None:
    """Held-out metrics, PR/ROC and confusion matrix, HTML report; thresholds and drift references from validation."""
    import json
    from pathlib import Path

    from pipelines import report as html_report
    from pipelines import steps
    from services.registry import Thresholds

    kind = str(model.metadata.get("kind"))
    result, summary, labels, importance = steps.evaluate_model(
        kind, Path(model.path), Path(train.path), Path(validation.path), Path(test.path), seed
    )
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
    metrics.metadata["kind"] = kind
    classification.log_roc_curve(
        result.roc_curve["fpr"], result.roc_curve["tpr"], [0.0] * len(result.roc_curve["fpr"])
    )
    decide = Thresholds(**summary["thresholds"])
    predicted = [1 if decide.decide(float(s)) != "approve" else 0 for s in result.scores]
    matrix = [[0, 0], [0, 0]]
    for truth, guess in zip(labels, predicted, strict=True):
        matrix[int(truth)][guess] += 1
    classification.log_confusion_matrix(["legitimate", "fraud"], matrix)
    Path(report.path).write_text(html_report.render(kind, result, labels, importance))
    Path(evaluation.path).mkdir(parents=True, exist_ok=True)
    (Path(evaluation.path) / steps.EVALUATION_FILE).write_text(json.dumps(summary))
    evaluation.metadata["kind"] = kind


def gate_and_register(
    sklearn_model: Input[Model],
    sklearn_evaluation: Input[Artifact],
    torch_model: Input[Model],
    torch_evaluation: Input[Artifact],
    test: Input[Dataset],
    snapshot: Input[Dataset],
    margin: float,
    latency_budget_ms: float,
    kafka_bootstrap: str,
    registry_uri: str,
    s3_endpoint: str,
    data_dir: str,
    decision: Output[Metrics],
    run_id: str = dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
) -> str:
    """Register both candidates; promote the better one only if it beats the re-scored champion by the margin."""
    import json
    import tempfile
    from pathlib import Path

    from pipelines import steps

    store = steps.StoreParams(kafka_bootstrap, registry_uri, s3_endpoint, data_dir)
    outcome = steps.gate_and_register(
        store,
        candidates=[
            (Path(sklearn_model.path), Path(sklearn_evaluation.path)),
            (Path(torch_model.path), Path(torch_evaluation.path)),
        ],
        test_path=Path(test.path),
        dataset=dict(snapshot.metadata),
        margin=margin,
        latency_budget_ms=latency_budget_ms,
        run_id=run_id,
        work_dir=Path(tempfile.mkdtemp(prefix="rtml-gate-")),
    )
    decision.log_metric("promoted", 1.0 if outcome["promoted"] else 0.0)
    decision.metadata.update({k: v for k, v in outcome.items() if k != "champion_metrics"})
    return json.dumps(outcome)


def build_pipeline(image: str) -> Any:
    """The ``rtml-training`` pipeline with every component running in ``image``."""

    def component(func: Callable[..., Any]) -> Any:
        # The image carries the project and kfp itself, so nothing is pip-installed at run time.
        return dsl.component(func, base_image=image, install_kfp_package=False)

    build_c, validate_c, featurize_c = component(build_dataset), component(validate_data), component(featurize)
    sklearn_c, torch_c, evaluate_c, gate_c = (
        component(train_sklearn),
        component(train_torch),
        component(evaluate_model),
        component(gate_and_register),
    )

    @dsl.pipeline(name=PIPELINE_NAME, description="Train, evaluate and gate the fraud model on point-in-time Feast data")
    def rtml_training(
        transactions_path: str = "",
        labels_path: str = "",
        window_start: str = "",
        window_end: str = "",
        dataset_version: str = "",
        backfill_features: bool = True,
        seed: int = 7,
        margin: float = 0.005,
        latency_budget_ms: float = 10.0,
        min_rows: int = 1000,
        max_null_rate: float = 0.5,
        mlp_max_epochs: int = 30,
        kafka_bootstrap: str = "",
        registry_uri: str = "",
        s3_endpoint: str = "",
        data_dir: str = "",
        feast_repo: str = "",
        feast_store_yaml: str = "",
        feast_data_uri: str = "",
    ) -> str:
        built = build_c(
            transactions_path=transactions_path,
            labels_path=labels_path,
            window_start=window_start,
            window_end=window_end,
            dataset_version=dataset_version,
            backfill_features=backfill_features,
            **store_inputs(locals()),
        ).set_retry(num_retries=NETWORK_RETRIES, backoff_duration="30s")
        built.set_caching_options(False)  # the offline store changes between runs
        checked = validate_c(
            snapshot=built.outputs["snapshot"],
            min_rows=min_rows,
            max_null_rate=max_null_rate,
            window_start=window_start,
            window_end=window_end,
        )
        splits = featurize_c(snapshot=built.outputs["snapshot"]).after(checked)
        sk = sklearn_c(train=splits.outputs["train"], seed=seed)
        nn = torch_c(
            train=splits.outputs["train"], validation=splits.outputs["validation"], seed=seed, max_epochs=mlp_max_epochs
        )
        evaluations = []
        for trained in (sk, nn):
            evaluations.append(
                evaluate_c(
                    model=trained.outputs["model"],
                    train=splits.outputs["train"],
                    validation=splits.outputs["validation"],
                    test=splits.outputs["test"],
                    seed=seed,
                )
            )
        gate = gate_c(
            sklearn_model=sk.outputs["model"],
            sklearn_evaluation=evaluations[0].outputs["evaluation"],
            torch_model=nn.outputs["model"],
            torch_evaluation=evaluations[1].outputs["evaluation"],
            test=splits.outputs["test"],
            snapshot=built.outputs["snapshot"],
            margin=margin,
            latency_budget_ms=latency_budget_ms,
            **store_inputs(locals(), STORE_PARAMETERS[:4]),  # the gate reads no Feast
        ).set_retry(num_retries=NETWORK_RETRIES, backoff_duration="30s")
        gate.set_caching_options(False)  # the champion may have changed since the last run
        return gate.outputs["Output"]

    return rtml_training
