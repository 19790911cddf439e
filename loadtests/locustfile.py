"""Locust traffic against the RTML scoring API (run it with `rtml loadtest`, see docs/loadtesting.md).

Users send realistic transactions drawn from the simulator (known and unknown users),
a share of /predict_batch calls and a small share of malformed requests that must be
refused with a 4xx. Tasks are tagged `steady`, `spike` and `batch`; `--scenario` picks the
load shape (ramp-and-hold or spike) and `rtml loadtest` passes the matching `--tags`.
"""

from __future__ import annotations

import csv
import random
from functools import cache
from typing import Any

import gevent
from locust import FastHttpUser, LoadTestShape, between, events, tag, task
from locust.env import Environment
from locust.stats import CSV_STATS_INTERVAL_SEC, StatsEntry

from services.common.settings import get_settings
from services.loadtest.scenarios import SCENARIOS, SCORING_SUMMARY_SUFFIX, scenario_stage
from services.loadtest.traffic import (
    MALFORMED_SUFFIX,
    PREDICT,
    PREDICT_BATCH,
    MalformedRequest,
    TrafficConfig,
    TransactionPool,
    is_malformed_name,
    malformed_requests,
)

EXPECTED_REJECTIONS = {400, 404, 405, 413, 415, 422}


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("RTML traffic")
    group.add_argument("--scenario", choices=sorted(SCENARIOS), default="steady", help="load shape")
    group.add_argument("--pool-size", type=int, default=5000, help="simulated transactions to draw from")
    group.add_argument("--unknown-share", type=float, default=0.1, help="share of users without features")
    group.add_argument("--batch-size", type=int, default=16, help="transactions per /predict_batch call")
    group.add_argument("--pool-seed", type=int, default=7, help="simulator seed (7 = rtml simulate's users)")


@cache
def _pool(pool_size: int, unknown_share: float, batch_size: int, seed: int) -> TransactionPool:
    return TransactionPool(TrafficConfig(pool_size, unknown_share, batch_size, seed))


@cache
def _auth_headers() -> dict[str, str]:
    token = get_settings().api_token.get_secret_value()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


class ScoringClient(FastHttpUser):
    """A payment front end asking for fraud scores."""

    wait_time = between(0.05, 0.25)

    def on_start(self) -> None:
        opts = self.environment.parsed_options
        self.pool = _pool(opts.pool_size, opts.unknown_share, opts.batch_size, opts.pool_seed)
        self.rng = random.Random()
        self.malformed: list[MalformedRequest] = malformed_requests(self.pool, self.rng)

    def _score(self, path: str, body: bytes) -> None:
        with self.client.post(path, data=body, headers=_auth_headers(), name=path, catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:120]}")

    @tag("steady", "spike")
    @task(20)
    def score_one(self) -> None:
        self._score(PREDICT, self.pool.single_body(self.rng))

    @tag("steady", "spike", "batch")
    @task(2)
    def score_batch(self) -> None:
        self._score(PREDICT_BATCH, self.pool.batch_body(self.rng))

    @tag("steady", "spike", "batch")
    @task(1)
    def send_malformed(self) -> None:
        """A 4xx here is the right answer (an expected rejection); a 2xx or 5xx is a failure."""
        bad = self.rng.choice(self.malformed)
        name = bad.path + MALFORMED_SUFFIX
        with self.client.post(bad.path, data=bad.body, headers=_auth_headers(), name=name, catch_response=True) as resp:
            if resp.status_code in EXPECTED_REJECTIONS:
                resp.success()
            else:
                resp.failure(f"{bad.problem}: expected a 4xx rejection, got HTTP {resp.status_code}")


class ScenarioShape(LoadTestShape):
    """Ramp-and-hold (steady, batch) or a spike, from --users, --spawn-rate, --run-time and --scenario."""

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        opts = self.runner.environment.parsed_options if self.runner else None
        if opts is None:
            return None
        return scenario_stage(
            opts.scenario, self.get_run_time(), users=opts.num_users or 1, spawn_rate=opts.spawn_rate or 1.0,
            run_time=opts.run_time or 60,
        )


def _write_scoring_summary(environment: Environment) -> None:
    """One row aggregating every scoring request (malformed ones excluded): the SLO is judged on it.

    Locust's own Aggregated row mixes in the malformed requests, and percentiles of separate
    rows cannot be combined afterwards, so the exact combined distribution is written here.
    """
    opts = environment.parsed_options
    if not opts or not opts.csv_prefix or getattr(opts, "worker", False):
        return
    total = StatsEntry(environment.stats, "Scoring requests", "POST", use_response_times_cache=False)
    for entry in environment.stats.entries.values():
        if not is_malformed_name(entry.name):
            total.extend(entry)
    percentiles = (0.5, 0.9, 0.95, 0.99, 0.999, 1.0)
    header = ["Type", "Name", "Request Count", "Failure Count", "Median Response Time", "Average Response Time",
              "Min Response Time", "Max Response Time", "Requests/s",
              *[f"{p * 100:g}%" for p in percentiles]]  # fmt: skip
    row = [total.method, total.name, total.num_requests, total.num_failures, total.median_response_time,
           round(total.avg_response_time, 3), total.min_response_time or 0, total.max_response_time,
           round(total.total_rps, 3),
           *[total.get_response_time_percentile(p) if total.num_requests else 0 for p in percentiles]]  # fmt: skip
    with open(f"{opts.csv_prefix}{SCORING_SUMMARY_SUFFIX}", "w", newline="") as fh:
        csv.writer(fh).writerows([header, row])


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    _write_scoring_summary(environment)
    # Users have stopped, but Locust rewrites its _stats.csv only once a second: give its writer one
    # more turn, so that file holds the same final numbers as the summary above.
    if environment.parsed_options and environment.parsed_options.csv_prefix:
        gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.2)
