"""`rtml demo --fast [flags]` as a subprocess, as a user runs it; returns its JSON summary once
every stage is checked done (the demo writes demo-summary.json beside its data dir)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from services.common.settings import child_env


def run_demo(tmp_path: Path, *flags: str, timeout_s: float) -> dict[str, Any]:
    env = child_env()
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli", "demo", "--fast", *flags, "--data-dir", str(tmp_path / "demo")],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    summary_file = tmp_path / "demo-summary.json"
    assert summary_file.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    summary: dict[str, Any] = json.loads(summary_file.read_text())
    assert proc.returncode == 0, (summary["error"], summary["stages"])
    assert all(summary["stages"].values()), summary["stages"]
    return summary
