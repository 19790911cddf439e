"""`rtml pipeline compile|run --local|submit`: the Kubeflow training pipeline from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from services.cli.args import http_url, non_negative_int, positive_float, positive_int
from services.cli.main import UsageError
from services.common.settings import get_settings


def _run_parameters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pipeline parameters")
    group.add_argument("--transactions", default="", help="simulator transactions Parquet file")
    group.add_argument("--labels", default="", help="simulator labels Parquet file")
    group.add_argument("--start", default="", help="window start (ISO time, inclusive)")
    group.add_argument("--end", default="", help="window end (ISO time, exclusive)")
    group.add_argument("--dataset-version", default="", help="rebuild from this dataset snapshot hash instead")
    group.add_argument("--no-backfill", action="store_true", help="read the offline store as it is")
    group.add_argument("--seed", type=non_negative_int, default=7)
    group.add_argument("--margin", type=float, default=0.005, help="PR-AUC a challenger must gain to be promoted")
    group.add_argument("--latency-budget-ms", type=positive_float, default=10.0, help="single-row p95 scoring budget")
    group.add_argument("--min-rows", type=positive_int, default=1000)
    group.add_argument("--max-epochs", type=positive_int, default=30, help="MLP epochs before early stopping")


def register(sub: Any) -> None:
    parser = sub.add_parser("pipeline", help="compile, run or submit the rtml-training pipeline")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    compile_p = actions.add_parser("compile", help="write the compiled pipeline YAML")
    compile_p.add_argument("--out", type=Path, default=None, help="target file (default pipelines/compiled/rtml_training.yaml)")
    compile_p.add_argument(
        "--batch-out", type=Path, default=None, help="rtml-batch-scoring target (default pipelines/compiled/rtml_batch_scoring.yaml)"
    )
    compile_p.set_defaults(handler=run_compile)
    run_p = actions.add_parser("run", help="run the pipeline on this machine")
    run_p.add_argument("--local", action="store_true", required=True, help="use the kfp.local subprocess runner")
    _run_parameters(run_p)
    run_p.set_defaults(handler=run_local)
    submit_p = actions.add_parser("submit", help="submit a run to a Kubeflow Pipelines API")
    submit_p.add_argument("--host", type=http_url, required=True, help="KFP API URL")
    submit_p.add_argument("--experiment", default="rtml", help="experiment name")
    submit_p.add_argument("--run-name", default="", help="run name (default: generated)")
    _run_parameters(submit_p)
    submit_p.set_defaults(handler=run_submit)


def arguments(args: argparse.Namespace) -> dict[str, Any]:
    if args.margin < 0:
        raise UsageError(f"--margin must be 0 or more, got {args.margin}")
    if not args.dataset_version and not (args.transactions and args.labels):
        raise UsageError("give --transactions and --labels (simulator Parquet), or --dataset-version")
    for flag, value in (("--transactions", args.transactions), ("--labels", args.labels)):
        if value and "://" not in value and not Path(value).is_file():
            raise UsageError(f"{flag} {value}: no such file")
    return {
        "transactions_path": str(Path(args.transactions).resolve()) if args.transactions and "://" not in args.transactions else args.transactions,
        "labels_path": str(Path(args.labels).resolve()) if args.labels and "://" not in args.labels else args.labels,
        "window_start": args.start,
        "window_end": args.end,
        "dataset_version": args.dataset_version,
        "backfill_features": not args.no_backfill,
        "seed": args.seed,
        "margin": args.margin,
        "latency_budget_ms": args.latency_budget_ms,
        "min_rows": args.min_rows,
        "mlp_max_epochs": args.max_epochs,
    }


def run_compile(args: argparse.Namespace) -> int:
    import shutil

    from pipelines.runner import (
        BATCH_COMPILED_PATH,
        CHART_PIPELINES_DIR,
        COMPILED_PATH,
        compile_batch_pipeline,
        compile_pipeline,
    )

    image = get_settings().training_image
    written = [compile_pipeline(args.out or COMPILED_PATH, image),
               compile_batch_pipeline(args.batch_out or BATCH_COMPILED_PATH, image)]
    for path in written:
        print(path)
        if path.parent == COMPILED_PATH.parent:  # the checked-in specs: keep the chart's copy in step
            print(shutil.copy2(path, CHART_PIPELINES_DIR / path.name))
    return 0


def run_local(args: argparse.Namespace) -> int:
    from pipelines.runner import PipelineRunError
    from pipelines.runner import run_local as run

    try:
        outcome = run(get_settings(), arguments(args))
    except PipelineRunError as exc:
        print(f"rtml: pipeline failed: {exc} (the failing step's log above has the reason)")
        return 1
    print(json.dumps(outcome, indent=2, default=str))
    return 0


def run_submit(args: argparse.Namespace) -> int:
    from pipelines.runner import submit

    run_id = submit(args.host, get_settings(), arguments(args), args.experiment, args.run_name)
    print(f"submitted run {run_id} to {args.host} (experiment {args.experiment})")
    return 0
