"""`rtml models export --format edge VERSION [--out DIR]`: a compressed model and a standalone scorer."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from services.cli.main import UsageError
from services.common.settings import get_settings

FORMATS = ("edge",)


def add_export(actions: Any) -> None:
    export = actions.add_parser("export", help="export VERSION for devices: int8 weights + a numpy-only scorer")
    export.add_argument("version", help="a torch version, e.g. v0002")
    export.add_argument("--format", choices=FORMATS, default="edge", help="export format (edge)")
    export.add_argument("--out", type=Path, default=None, help="output directory (default ./edge-VERSION)")
    export.add_argument(
        "--no-compare", action="store_true", help="skip scoring the version's test split with both models"
    )
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    from services.models.artifacts import ArtifactError, load_model
    from services.models.edge import EdgeExportError, export_edge
    from services.registry import ModelRegistry, RegistryError

    settings = get_settings()
    registry = ModelRegistry(settings.registry_uri, settings.s3_endpoint)
    try:
        record = registry.get(args.name, args.version)
    except RegistryError as exc:
        raise UsageError(str(exc)) from None
    out_dir: Path = args.out or Path(f"edge-{record.version}")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} exists and is not a directory")
    with tempfile.TemporaryDirectory(prefix="rtml-export-") as cache:
        try:
            scorer = load_model(registry, record, Path(cache))
            exported = export_edge(record, scorer, Path(cache) / record.name / record.version, out_dir)
        except (EdgeExportError, ArtifactError) as exc:
            raise UsageError(str(exc)) from None
        summary: dict[str, Any] = {"version": record.version, "format": args.format, **exported.summary()}
        if not args.no_compare:
            from services.models.edge_report import compare, holdout_inputs

            try:
                x, y = holdout_inputs(record, settings.registry_uri, settings.s3_endpoint)
                summary["comparison"] = compare(record, scorer, out_dir, x, y)
            except (ValueError, FileNotFoundError) as exc:
                summary["comparison"] = f"skipped: {exc}"
    print(json.dumps(summary, indent=2))
    return 0
