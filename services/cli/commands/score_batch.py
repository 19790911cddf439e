"""`rtml score-batch --input PATH --output PATH [--model VERSION]`: score a Parquet table of transactions."""

from __future__ import annotations

import argparse
import json
from typing import Any

from services.cli.main import UsageError
from services.common.settings import get_settings


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "score-batch", help="score a Parquet file of transactions with point-in-time features from the offline store"
    )
    parser.add_argument("--input", required=True, help="Parquet of transactions (the Transaction fields), local or s3://")
    parser.add_argument("--output", required=True, help="Parquet to write the scores to, local or s3://")
    parser.add_argument("--model", default="", metavar="VERSION", help="registered version (default: the champion)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from services.batch import BatchInputError, score_file

    if args.input == args.output:
        raise UsageError("--output must differ from --input")
    try:
        result = score_file(get_settings(), args.input, args.output, args.model)
    except BatchInputError as exc:
        raise UsageError(str(exc)) from None
    print(json.dumps(result.summary(), indent=2))
    return 0
