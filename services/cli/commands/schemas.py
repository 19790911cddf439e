"""`rtml schemas`: write the JSON Schema of every event type (docs/schemas by default)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from services.common.events import export_json_schemas
from services.common.settings import REPO_ROOT


def register(sub: Any) -> None:
    parser = sub.add_parser("schemas", help="export the event contract as JSON Schema files")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "schemas", help="target directory")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    for path in export_json_schemas(args.out):
        print(path)
    return 0
