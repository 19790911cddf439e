"""``python -m services.loadtest``: exactly `rtml loadtest`, importing only what a load generator needs.

The in-cluster Job (helm/rtml/templates/loadtest.yaml) runs this in the lean loadtest image,
which lacks the dependencies of the other `rtml` subcommands.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from services.cli.commands import loadtest
from services.cli.main import UsageError, _Parser
from services.common.settings import SettingsError


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(prog="rtml")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    loadtest.register(sub)
    args = parser.parse_args(["loadtest", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.handler(args))
    except (SettingsError, UsageError) as exc:
        print(f"rtml: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
