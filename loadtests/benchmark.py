"""Step users against a real local inference service and record what `rtml loadtest` measures.

    python loadtests/benchmark.py --steps 2,4,8,16 --run-time 20s

Starts a Tansu broker, a Feast store and a fitted model exactly as tests/inference does, serves
the model with `python -m services.inference`, then runs `rtml loadtest` once per user count and
prints one Markdown table row per step (figures for docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

from inference.conftest import (  # noqa: E402  (helpers of the inference tests, shared on purpose)
    TOKEN,
    _env,
    register_model,
    stop_process,
    wait_ready,
    write_online_rows,
)

from services.common.broker import EmbeddedBroker, free_port  # noqa: E402
from services.common.events import Topics  # noqa: E402
from services.common.kafka import ensure_topics  # noqa: E402
from services.common.settings import load_settings  # noqa: E402
from services.feature.store import apply_repo  # noqa: E402
from services.registry import ModelRegistry  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", default="2,4,8,16")
    parser.add_argument("--run-time", default="20s")
    parser.add_argument("--scenario", default="steady")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rtml-loadbench-"))
    with EmbeddedBroker(log_path=work / "tansu.log") as broker:
        settings = load_settings(kafka_bootstrap=broker.bootstrap, data_dir=work / "data")
        ensure_topics(settings, [Topics.PREDICTIONS, Topics.MODEL_EVENTS])
        apply_repo(settings)
        write_online_rows(settings)
        registry = ModelRegistry(settings.registry_uri)
        registry.promote("fraud", register_model(registry, work, seed=1).version)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with open(work / "inference.log", "wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "services.inference"], cwd=REPO_ROOT, env=_env(settings, port),
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            wait_ready(url, server, work / "inference.log")
            print("| users | scoring req/s | p50 ms | p99 ms | error rate | expected rejections | Locust CPU (cores) |")
            print("|---|---|---|---|---|---|---|")
            for users in [int(u) for u in args.steps.split(",")]:
                report = work / f"users-{users}"
                env = {**_env(settings, port), "RTML_API_TOKEN": TOKEN}
                subprocess.run(
                    [sys.executable, "-m", "services.cli", "loadtest", "--host", url, "--users", str(users),
                     "--spawn-rate", str(users), "--run-time", args.run_time, "--scenario", args.scenario,
                     "--slo-p99-ms", "100", "--report", str(report)],
                    cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, check=False,
                )
                v = json.loads((report / "verdict.json").read_text())
                n, c = v["numbers"], v["locust"]
                print(f"| {users} | {n['requests_per_s']:.1f} | {n['median_ms']:g} | {n['p99_ms']:g} | "
                      f"{n['error_rate']:.2%} | {n['expected_rejections']} | {c['cores_used']:.2f} |", flush=True)
        finally:
            stop_process(server)


if __name__ == "__main__":
    main()
