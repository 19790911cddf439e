"""The ``rtml-batch-scoring`` pipeline (KFP v2): one step that scores a Parquet table of transactions
with point-in-time features from the Feast offline store and the champion (or a given version).

The step is ``services.batch.score_file``, the very function behind ``rtml score-batch`` and the
chart's batch-scoring CronJob. No ``from __future__ import annotations``: KFP reads real annotations.
"""

from collections.abc import Callable
from typing import Any

from kfp import dsl
from kfp.dsl import Dataset, Output

from pipelines.store import store_inputs

PIPELINE_NAME = "rtml-batch-scoring"
NETWORK_RETRIES = 2  # reads Feast / object storage and the registry


def score_transactions(
    input_path: str,
    output_path: str,
    model_version: str,
    registry_uri: str,
    s3_endpoint: str,
    data_dir: str,
    feast_repo: str,
    feast_store_yaml: str,
    feast_data_uri: str,
    scores: Output[Dataset],
) -> str:
    """Score every transaction in input_path; write the scores to output_path (if given) and the artifact."""
    import json
    import shutil

    from pipelines import steps
    from services.batch import score_file

    store = steps.StoreParams("", registry_uri, s3_endpoint, data_dir, feast_repo, feast_store_yaml, feast_data_uri)
    result = score_file(store.settings(), input_path, scores.path, model_version)
    if output_path:
        from services.batch.scoring import write_scores

        if "://" in output_path:
            import pandas as pd

            write_scores(pd.read_parquet(scores.path), output_path, s3_endpoint)
        else:
            shutil.copyfile(scores.path, output_path)
    scores.metadata.update({k: v for k, v in result.summary().items() if k != "output"})
    return json.dumps({**result.summary(), "output": output_path or scores.uri})


def build_pipeline(image: str) -> Any:
    """The ``rtml-batch-scoring`` pipeline with its component running in ``image``."""

    def component(func: Callable[..., Any]) -> Any:
        return dsl.component(func, base_image=image, install_kfp_package=False)

    score_c = component(score_transactions)

    @dsl.pipeline(name=PIPELINE_NAME, description="Score a Parquet table of transactions with point-in-time Feast features")
    def rtml_batch_scoring(
        input_path: str,
        output_path: str = "",
        model_version: str = "",
        registry_uri: str = "",
        s3_endpoint: str = "",
        data_dir: str = "",
        feast_repo: str = "",
        feast_store_yaml: str = "",
        feast_data_uri: str = "",
    ) -> str:
        scored = score_c(
            input_path=input_path,
            output_path=output_path,
            model_version=model_version,
            **store_inputs(locals()),
        ).set_retry(num_retries=NETWORK_RETRIES, backoff_duration="30s")
        scored.set_caching_options(False)  # the offline store and the champion change between runs
        return scored.outputs["Output"]

    return rtml_batch_scoring
