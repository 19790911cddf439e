"""`rtml loadtest`: a headless Locust run against the scoring API, judged against an SLO."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

from services.cli.args import duration_seconds, fraction, http_url, positive_float, positive_int
from services.cli.main import UsageError
from services.loadtest.report import ReportError, ReportFiles, RunNumbers, read_numbers
from services.loadtest.runner import DEFAULT_LOCUSTFILE, LoadTestPlan, LocustRun, run_locust
from services.loadtest.scenarios import SCENARIOS
from services.loadtest.verdict import Slo, Verdict, judge

VERDICT_JSON = "verdict.json"
LOG_NAME = "locust.log"
MAX_BATCH = 1000  # the API's limit per /predict_batch call


def register(sub: Any) -> None:
    parser = sub.add_parser("loadtest", help="headless Locust run with an SLO verdict and a report")
    parser.add_argument("--host", type=http_url, required=True, help="scoring API base URL, e.g. http://127.0.0.1:3000")
    parser.add_argument("--users", type=positive_int, default=10, help="concurrent simulated clients (peak for spike)")
    parser.add_argument("--spawn-rate", type=positive_float, default=5.0, help="users started per second")
    parser.add_argument("--run-time", type=duration_seconds, default=60, help="how long to load, e.g. 60s, 5m")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="steady", help="load shape and task mix")
    parser.add_argument("--slo-p99-ms", type=positive_float, default=100.0, help="p99 latency limit of scoring requests")
    parser.add_argument("--slo-error-rate", type=fraction, default=0.01, help="error-rate limit of scoring requests, 0..1")
    parser.add_argument("--report", type=Path, default=Path("reports/loadtest"), metavar="DIR", help="CSV, HTML and verdict go here")
    parser.add_argument("--unknown-share", type=fraction, default=0.1, help="share of requests from users without features")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="transactions per /predict_batch call")
    parser.add_argument("--locustfile", type=Path, default=DEFAULT_LOCUSTFILE, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


def plan_from(args: argparse.Namespace) -> LoadTestPlan:
    if args.batch_size > MAX_BATCH:
        raise UsageError(f"--batch-size must be at most {MAX_BATCH} (the API's limit), got {args.batch_size}")
    if args.report.exists() and not args.report.is_dir():
        raise UsageError(f"--report: {args.report} exists and is not a directory")
    if not args.locustfile.is_file():
        raise UsageError(f"--locustfile: {args.locustfile} does not exist")
    return LoadTestPlan(
        host=args.host,
        users=args.users,
        spawn_rate=args.spawn_rate,
        run_time_s=args.run_time,
        scenario=args.scenario,
        unknown_share=args.unknown_share,
        batch_size=args.batch_size,
        locustfile=args.locustfile.resolve(),
        report=ReportFiles(args.report.resolve()),
    )


def _table(verdict: Verdict, numbers: RunNumbers, locust: LocustRun, plan: LoadTestPlan) -> Table:
    ran = f"{locust.wall_s:.0f}s of {plan.run_time_s}s (stopped early)" if locust.stopped_early else f"{plan.run_time_s}s"
    table = Table(title=f"{plan.scenario}, {plan.users} users, {ran} against {plan.host}")
    table.add_column("check")
    table.add_column("target")
    table.add_column("measured", justify="right")
    table.add_column("result")
    for check in verdict.checks:
        table.add_row(check.name, check.target, check.measured, "[green]held[/]" if check.held else "[red]missed[/]")
    cores = psutil.cpu_count() or 1
    table.add_section()
    table.add_row("throughput (scoring)", "", f"{numbers.requests_per_s:.1f} req/s", "")
    table.add_row("median latency (scoring)", "", f"{numbers.median_ms:g} ms", "")
    table.add_row("expected rejections", "", str(numbers.expected_rejections), "")
    table.add_row("Locust's own CPU", "", f"{locust.cores_used:.2f} cores ({locust.cores_used / cores:.0%} of {cores})", "")
    return table


def _write_verdict(plan: LoadTestPlan, verdict: Verdict, numbers: RunNumbers, locust: LocustRun) -> Path:
    path = plan.report.directory / VERDICT_JSON
    payload = {
        **verdict.as_dict(),
        "plan": {"host": plan.host, "users": plan.users, "spawn_rate": plan.spawn_rate, "run_time_s": plan.run_time_s,
                 "scenario": plan.scenario},
        "numbers": {
            "scoring_requests": numbers.scoring_requests, "scoring_failures": numbers.scoring_failures,
            "error_rate": numbers.error_rate, "p99_ms": numbers.p99_ms, "median_ms": numbers.median_ms,
            "requests_per_s": numbers.requests_per_s, "malformed_requests": numbers.malformed_requests,
            "malformed_failures": numbers.malformed_failures, "expected_rejections": numbers.expected_rejections,
        },
        "locust": {"cpu_s": locust.cpu_s, "wall_s": locust.wall_s, "cores_used": locust.cores_used,
                   "machine_cores": psutil.cpu_count() or 1, "stopped_early": locust.stopped_early},
    }  # fmt: skip
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def run(args: argparse.Namespace) -> int:
    plan = plan_from(args)
    slo = Slo(p99_ms=args.slo_p99_ms, error_rate=args.slo_error_rate)
    plan.report.directory.mkdir(parents=True, exist_ok=True)
    log_path = plan.report.directory / LOG_NAME
    print(f"loading {plan.host} for {plan.run_time_s}s ({plan.scenario}, {plan.users} users; SIGTERM or Ctrl-C stops early "
          f"and judges what ran); Locust log: {log_path}", flush=True)
    locust = run_locust(plan, log_path)
    try:
        numbers = read_numbers(plan.report)
    except ReportError as exc:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-15:]
        print(f"rtml loadtest: no usable report (Locust exited {locust.returncode}): {exc}", file=sys.stderr)
        print("\n".join(tail), file=sys.stderr)
        return 1
    verdict = judge(numbers, slo)
    verdict_path = _write_verdict(plan, verdict, numbers, locust)
    console = Console()
    console.print(_table(verdict, numbers, locust, plan))
    # On its own line, never wrapped: scripts and CI logs grep for it.
    console.print("verdict: [bold green]SLO HELD[/]" if verdict.held else "verdict: [bold red]SLO MISSED[/]")
    console.print(f"report: {plan.report.html}  CSV: {plan.report.csv_prefix}_*.csv  verdict: {verdict_path}")
    return 0 if verdict.held else 1
