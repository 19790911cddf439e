"""Every benchmark in turn (``make bench``): each in its own process, as docs/benchmarks.md runs it.

The figures go to standard output; docs/benchmarks.md records them by hand with the load
average of the run, since two shared cores make every figure depend on what else ran.
"""

from __future__ import annotations

import subprocess
import sys
import time

from services.common.settings import REPO_ROOT

# (what, command after `python`): the commands docs/benchmarks.md names, in its order.
BENCHMARKS: list[tuple[str, list[str]]] = [
    ("simulator", ["-m", "benchmarks.simulator_throughput"]),
    ("monitor", ["-m", "benchmarks.monitor_throughput"]),
    ("inference (a)-(d)", ["benchmarks/inference_bench.py", "--seconds", "8"]),
    ("training pipeline", ["-m", "benchmarks.training_pipeline", "300000"]),
    ("feature ingestion", ["-m", "benchmarks.feature_ingest"]),
    ("feature ingestion, one process per stage", ["-m", "benchmarks.feature_ingest", "--split-stages"]),
    ("feature ingestion, user stage scaled", [
        "-m", "benchmarks.feature_ingest", "--transactions", "60000", "--seconds", "15", "--partitions", "4",
        "--layout", "user/user/label/merchant",
    ]),
    ("feature user stage, step by step", ["-m", "benchmarks.feature_user_stage"]),
]


def main() -> int:
    failed: list[str] = []
    for i, (what, args) in enumerate(BENCHMARKS, 1):
        print(f"\n== [{i}/{len(BENCHMARKS)}] {what}: python {' '.join(args)}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, *args], cwd=REPO_ROOT)
        print(f"== {what}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(what)
    print("\n(batch scoring / edge export need a trained data dir: RTML_DATA_DIR=DIR python benchmarks/batch_edge.py TXNS.parquet)")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
