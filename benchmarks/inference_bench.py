"""Side-by-side HTTP benchmark of the inference service against its floors and a naive peer.

    python benchmarks/inference_bench.py [--concurrency 32] [--seconds 10]

(a) bare Starlette echo, (b) default BentoML echo, (c) our /predict (batching on, and off),
(d) FastAPI + Feast get_online_features + the same model per request. Each server runs
alone, pinned to CPU 0; the load generator (one asyncio loop) is pinned to CPU 1.
Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from inference.conftest import TOKEN, make_transaction, register_model, write_online_rows  # noqa: E402

from benchmarks.inference_loadgen import LoadResult, run_load  # noqa: E402
from services.common.broker import EmbeddedBroker, free_port, wait_for_port  # noqa: E402
from services.common.events import Topics  # noqa: E402
from services.common.kafka import ensure_topics  # noqa: E402
from services.common.settings import load_settings  # noqa: E402
from services.feature.store import apply_repo  # noqa: E402
from services.registry import ModelRegistry  # noqa: E402

SERVER_CPU, CLIENT_CPU = "0", 1


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, *cmd], cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _tree_cpu(pid: int) -> float:
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _wait_ok(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(url)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--only", nargs="*", default=[])
    args = parser.parse_args()
    os.sched_setaffinity(0, {CLIENT_CPU})
    work = Path(tempfile.mkdtemp(prefix="rtml-inference-bench-"))
    results: list[tuple[LoadResult, float]] = []
    with EmbeddedBroker(log_path=work / "tansu.log") as broker:
        settings = load_settings(kafka_bootstrap=broker.bootstrap, data_dir=work / "data")
        ensure_topics(settings, [Topics.PREDICTIONS, Topics.MODEL_EVENTS])
        apply_repo(settings)
        write_online_rows(settings)
        registry = ModelRegistry(settings.registry_uri)
        registry.promote("fraud", register_model(registry, work, seed=1).version)
        payloads = [make_transaction(i, prefix="bench") for i in range(500)]
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("RTML_")},
            "RTML_KAFKA_BOOTSTRAP": broker.bootstrap, "RTML_DATA_DIR": str(settings.data_dir),
            "RTML_API_TOKEN": TOKEN, "RTML_LOG_LEVEL": "WARNING", "BENTOML_DO_NOT_TRACK": "True",
            "BENTOML_HOME": str(work / "bentoml"),
        }
        py = sys.executable
        uvicorn = [py, "-m", "uvicorn", "--no-access-log", "--log-level", "warning", "--port"]
        cases = [
            ("(a) bare Starlette echo", lambda p: [*uvicorn, str(p), "benchmarks.inference_echo_apps:bare_starlette"], {}, "/predict"),
            ("(b) default BentoML echo", lambda p: [py, "-m", "bentoml", "serve", "benchmarks.inference_echo_apps:DefaultEcho", "--port", str(p)], {}, "/predict"),
            ("(c) RTML /predict, batching", lambda p: [py, "-m", "services.inference"], {"RTML_INFERENCE_MAX_BATCH": "64"}, "/readyz"),
            ("(c') RTML /predict, no batching", lambda p: [py, "-m", "services.inference"], {"RTML_INFERENCE_MAX_BATCH": "1"}, "/readyz"),
            ("(d) naive FastAPI + Feast per request", lambda p: [*uvicorn, str(p), "benchmarks.inference_naive_peer:app"], {}, "/docs"),
        ]
        for name, command, extra_env, probe in cases:
            if args.only and not any(name.startswith(f"({o})") for o in args.only):
                continue
            port = free_port()
            proc = _start(command(port), {**env, **extra_env, "RTML_INFERENCE_PORT": str(port)}, work / f"server-{port}.log")
            try:
                wait_for_port("127.0.0.1", port, 120)
                if probe != "/predict":
                    _wait_ok(f"http://127.0.0.1:{port}{probe}")
                cpu0 = _tree_cpu(proc.pid)
                result = run_load(
                    name, f"http://127.0.0.1:{port}/predict", payloads, headers={"Authorization": f"Bearer {TOKEN}"},
                    concurrency=args.concurrency, duration_s=args.seconds, warmup_s=2.0,
                )
                results.append((result, _tree_cpu(proc.pid) - cpu0))
                print(result, file=sys.stderr)
            finally:
                _stop(proc)
    print(f"\nconcurrency {args.concurrency}, {args.seconds:.0f} s per case after 2 s warm-up; server on CPU {SERVER_CPU}, client on CPU {CLIENT_CPU}\n")
    print("| case | req/s | p50 ms | p99 ms | requests | errors | client CPU s | server CPU s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for result, server_cpu in results:
        print(f"{result.row()} {server_cpu:.1f} |")


if __name__ == "__main__":
    main()
