"""`rtml`: the command line. Each subcommand lives in its own module under
``services.cli.commands`` and registers itself, so commands stay independent."""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from typing import NoReturn

from services.cli import commands
from services.common.settings import SettingsError


class UsageError(Exception):
    """A flag or argument value is wrong; reported as one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage dump: the user sees exactly what is wrong.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rtml", description="RTML: real-time ML on Kafka, Feast, Kubeflow and BentoML")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.handler(args)
    except (SettingsError, UsageError) as exc:
        print(f"rtml: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


def run(argv: Sequence[str] | None = None) -> NoReturn:
    """The process entry point: ``main``, the exit handlers, then exit without interpreter teardown.

    Tearing down after pyarrow wrote Parquet sometimes aborts the finished process ("terminate
    called without an active exception", exit -6: a native worker thread still joinable when the
    process exits, apache/arrow#34314); seen once in `rtml simulate --parquet` after its output was
    complete. atexit handlers still run and the streams are flushed, so nothing is lost by skipping it.
    """
    code = main(argv)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
