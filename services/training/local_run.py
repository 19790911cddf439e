"""``python -m services.training.local_run ARGS_JSON OUTCOME_JSON``: one kfp.local pipeline run in
its own process (the service's poll loop stays responsive and a shutdown can end it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from services.common.logs import configure_logging
from services.common.settings import get_settings


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python -m services.training.local_run ARGS_JSON OUTCOME_JSON\n")
        return 2
    arguments, outcome_path = json.loads(Path(argv[0]).read_text()), Path(argv[1])
    settings = get_settings()
    configure_logging(settings, "training-run")
    from pipelines.runner import PipelineRunError, run_local

    try:
        outcome = run_local(settings, arguments)
    except PipelineRunError as exc:
        outcome_path.write_text(json.dumps({"error": str(exc)}))
        return 1
    outcome_path.write_text(json.dumps({"outcome": outcome}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
