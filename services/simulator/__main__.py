"""`python -m services.simulator [flags]` is `rtml simulate [flags]` (what a Kubernetes Job runs)."""

import sys

from services.cli.main import run

run(["simulate", *sys.argv[1:]])
