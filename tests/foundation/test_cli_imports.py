"""`rtml` builds its parser without loading the stack: a mistyped flag answers in about a second,
not after importing Feast, scikit-learn and torch (~8 s of CPU that every CLI call used to pay)."""

from __future__ import annotations

import subprocess
import sys

from services.common.settings import child_env

HEAVY = ("feast", "sklearn", "torch", "bentoml", "kfp", "services.demo.orchestrator")


def test_parsing_every_command_loads_none_of_the_stack() -> None:
    probe = (
        "import sys\n"
        "from services.cli.main import build_parser\n"
        "build_parser()\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], env=child_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported while building the parser: {done.stdout.strip()}"
