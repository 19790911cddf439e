"""Compiling, running locally (kfp.local) and submitting (kfp.Client) the ``rtml-training`` pipeline
(and compiling and running locally ``rtml-batch-scoring``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from kfp import compiler

from pipelines.training import build_pipeline
from services.common.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)

COMPILED_PATH = REPO_ROOT / "pipelines" / "compiled" / "rtml_training.yaml"
BATCH_COMPILED_PATH = REPO_ROOT / "pipelines" / "compiled" / "rtml_batch_scoring.yaml"
# The chart's copy (a chart reads no file outside its folder): helm/rtml/templates/pipelines.yaml
# ships it with every step's image set to the deployed training image.
CHART_PIPELINES_DIR = REPO_ROOT / "helm" / "rtml" / "files" / "pipelines"



class PipelineRunError(RuntimeError):
    """The pipeline run failed; the message names the failing step."""


def compile_pipeline(path: Path = COMPILED_PATH, image: str = "rtml-training:latest") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build_pipeline(image), str(path))
    return path


def compile_batch_pipeline(path: Path = BATCH_COMPILED_PATH, image: str = "rtml-training:latest") -> Path:
    """The ``rtml-batch-scoring`` pipeline (pipelines/batch_scoring.py)."""
    from pipelines.batch_scoring import build_pipeline as build_batch_pipeline

    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build_batch_pipeline(image), str(path))
    return path


def store_arguments(settings: Settings) -> dict[str, Any]:
    """Where the run reads and writes, from this process's settings."""
    return {
        "kafka_bootstrap": settings.kafka_bootstrap,
        "registry_uri": settings.registry_uri,
        "s3_endpoint": settings.s3_endpoint,
        "data_dir": str(settings.data_dir.resolve()),
        "feast_repo": str(settings.feast_repo.resolve()),
        "feast_store_yaml": settings.feast_store_yaml,
        "feast_data_uri": settings.feast_data_uri,
    }


def _run_with_kfp_local(pipeline: Any, arguments: dict[str, Any], root: Path) -> dict[str, Any]:
    """Every step as a subprocess of this Python (no containers): it reads the same stores as we do."""
    from kfp import local

    root.mkdir(parents=True, exist_ok=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    try:
        task = pipeline(**arguments)
    except RuntimeError as exc:
        raise PipelineRunError(str(exc)) from exc
    return dict(json.loads(task.output))


def run_local(settings: Settings, arguments: dict[str, Any], pipeline_root: Path | None = None) -> dict[str, Any]:
    """``rtml-training`` with kfp.local; returns the gate's outcome."""
    return _run_with_kfp_local(
        build_pipeline(settings.training_image),
        {**store_arguments(settings), **arguments},
        pipeline_root or settings.data_dir / "kfp-local",
    )


def run_batch_local(settings: Settings, arguments: dict[str, Any], pipeline_root: Path | None = None) -> dict[str, Any]:
    """``rtml-batch-scoring`` with kfp.local (it takes no Kafka address); returns the step's summary."""
    from pipelines.batch_scoring import build_pipeline as build_batch_pipeline

    store = {k: v for k, v in store_arguments(settings).items() if k != "kafka_bootstrap"}
    return _run_with_kfp_local(
        build_batch_pipeline(settings.training_image), {**store, **arguments}, pipeline_root or settings.data_dir / "kfp-local"
    )


def submit(
    host: str, settings: Settings, arguments: dict[str, Any], experiment: str, run_name: str = "", client: Any = None
) -> str:
    """Create a run on a Kubeflow Pipelines API; returns its run id."""
    import kfp

    kfp_client = client or kfp.Client(host=host)
    result = kfp_client.create_run_from_pipeline_func(
        build_pipeline(settings.training_image),
        arguments={**store_arguments(settings), **arguments},
        experiment_name=experiment,
        run_name=run_name or None,
        enable_caching=False,
    )
    return str(result.run_id)
