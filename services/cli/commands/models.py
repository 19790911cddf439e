"""`rtml models list|promote VERSION|rollback`: the model registry from the command line."""

from __future__ import annotations

import argparse
from typing import Any, Literal

from services.cli.main import UsageError
from services.cli.model_export import add_export
from services.common.settings import get_settings
from services.registry import ModelRegistry, ModelVersion, RegistryError

MODEL_NAME = "fraud"


def register(sub: Any) -> None:
    parser = sub.add_parser("models", help="list, promote or roll back registered models")
    parser.add_argument("--name", default=MODEL_NAME, help="model name")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="every version with its stage and test metrics").set_defaults(handler=run_list)
    promote = actions.add_parser("promote", help="make VERSION the champion")
    promote.add_argument("version", help="e.g. v0003")
    promote.add_argument("--reason", default="manual", help="recorded in the promotion log")
    promote.set_defaults(handler=run_promote)
    actions.add_parser("rollback", help="restore the previous champion").set_defaults(handler=run_rollback)
    add_export(actions)


def _registry() -> ModelRegistry:
    settings = get_settings()
    return ModelRegistry(settings.registry_uri, settings.s3_endpoint)


def run_list(args: argparse.Namespace) -> int:
    versions = _registry().versions(args.name)
    if not versions:
        print(f"no versions of {args.name!r} registered")
        return 0
    header = f"{'VERSION':<8} {'STAGE':<10} {'KIND':<8} {'PR-AUC':>7} {'ROC-AUC':>7} {'P95 MS':>7}  {'CREATED':<20} DATASET"
    print(header)
    for v in versions:
        m = v.metrics
        print(
            f"{v.version:<8} {v.stage.value:<10} {v.kind:<8} {m.get('pr_auc', float('nan')):>7.4f} "
            f"{m.get('roc_auc', float('nan')):>7.4f} {m.get('latency_single_row_p95_ms', float('nan')):>7.2f}  "
            f"{v.created_at:%Y-%m-%d %H:%M:%S}  {v.data_window.dataset_hash or '-'}"
        )
    return 0


def run_promote(args: argparse.Namespace) -> int:
    registry = _registry()
    previous = registry.champion(args.name)
    try:
        record = registry.promote(args.name, args.version, reason=args.reason)
    except RegistryError as exc:
        raise UsageError(str(exc)) from None
    print(f"{record.name} {record.version} is now the champion")
    return _announce(record, previous, "promoted")


def run_rollback(args: argparse.Namespace) -> int:
    registry = _registry()
    previous = registry.champion(args.name)
    try:
        record = registry.rollback(args.name)
    except RegistryError as exc:
        raise UsageError(str(exc)) from None
    print(f"{record.name} rolled back to {record.version}")
    return _announce(record, previous, "rolled_back")


def _announce(record: ModelVersion, previous: ModelVersion | None, event: Literal["promoted", "rolled_back"]) -> int:
    """Serving replicas switch on the event; without it they wait for their registry poll."""
    from services.models.release import publish_promotion

    try:
        publish_promotion(get_settings(), record, previous.version if previous else None, event)
    except Exception as exc:  # the registry already changed; replicas still pick it up on their poll
        print(f"rtml: warning: {record.version} is the champion but the {event} event was not published: {exc}")
        return 1
    print(f"published {event} {record.version} on rtml.model-events")
    return 0
