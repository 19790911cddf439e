"""`rtml loadtest` against a real running inference service: reports written, verdict agrees with the
CSV, exit code follows the SLO, malformed requests counted as expected rejections."""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from services.common.settings import REPO_ROOT, child_env
from services.loadtest.scenarios import SPIKE_BASE_SHARE

from .conftest import TOKEN, RunningService

RUN_TIME = "8s"


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    report: Path

    def csv_rows(self, name: str) -> list[dict[str, str]]:
        with (self.report / name).open(newline="") as fh:
            return list(csv.DictReader(fh))

    def verdict(self) -> dict[str, Any]:
        return json.loads((self.report / "verdict.json").read_text())


def _env(token: str) -> dict[str, str]:
    env = child_env()
    env["RTML_API_TOKEN"] = token
    return env


def rtml_loadtest(*args: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "loadtest", *args],
        cwd=REPO_ROOT, env=_env(token), capture_output=True, text=True, timeout=120,
    )


def side_by_side(commands: dict[str, tuple[list[str], Path]]) -> dict[str, CliRun]:
    """``rtml loadtest`` runs started together (to keep the module quick), each with its report dir."""
    started = {
        name: (subprocess.Popen(argv, cwd=REPO_ROOT, env=_env(TOKEN), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True), report)
        for name, (argv, report) in commands.items()
    }
    done: dict[str, CliRun] = {}
    for name, (process, report) in started.items():
        try:
            stdout, stderr = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
        done[name] = CliRun(process.returncode, stdout, stderr, report)
    return done


@pytest.fixture(scope="module")
def runs(service: RunningService, tmp_path_factory: pytest.TempPathFactory) -> dict[str, CliRun]:
    """Two short runs side by side: a generous SLO and an impossible p99."""
    commands = {}
    for name, p99 in (("generous", "10000"), ("impossible", "0.001")):
        report = tmp_path_factory.mktemp(name)
        commands[name] = ([
            sys.executable, "-m", "services.cli", "loadtest", "--host", service.url, "--users", "2",
            "--spawn-rate", "2", "--run-time", RUN_TIME, "--slo-p99-ms", p99, "--slo-error-rate", "0.05",
            "--report", str(report),
        ], report)  # fmt: skip
    return side_by_side(commands)


@pytest.fixture()
def generous(runs: dict[str, CliRun]) -> CliRun:
    return runs["generous"]


@pytest.fixture()
def impossible(runs: dict[str, CliRun]) -> CliRun:
    return runs["impossible"]


def test_a_held_slo_exits_0_and_writes_csv_html_and_verdict(generous: CliRun) -> None:
    assert generous.returncode == 0, generous.stdout + generous.stderr
    for name in ("locust_stats.csv", "locust_scoring.csv", "locust_failures.csv", "report.html", "verdict.json"):
        assert (generous.report / name).is_file(), name
    assert "<html" in (generous.report / "report.html").read_text().lower()
    assert "SLO HELD" in generous.stdout


def test_an_impossible_slo_exits_1_on_latency_alone(impossible: CliRun) -> None:
    assert impossible.returncode == 1, impossible.stdout + impossible.stderr
    assert "SLO MISSED" in impossible.stdout
    checks = {c["name"]: c["held"] for c in impossible.verdict()["checks"]}
    assert checks == {
        "scoring requests sent": True,
        "p99 latency (scoring)": False,
        "error rate (scoring)": True,
        "malformed refused (4xx)": True,
    }


@pytest.mark.parametrize("which", ["generous", "impossible"])
def test_the_verdict_matches_the_numbers_in_the_csv(which: str, request: pytest.FixtureRequest) -> None:
    run: CliRun = request.getfixturevalue(which)
    verdict = run.verdict()
    scoring = run.csv_rows("locust_scoring.csv")[0]
    stats = run.csv_rows("locust_stats.csv")
    scoring_rows = [r for r in stats if r["Name"] in ("/predict", "/predict_batch")]

    # the scoring summary aggregates exactly the /predict and /predict_batch rows of Locust's own CSV
    assert int(scoring["Request Count"]) == sum(int(r["Request Count"]) for r in scoring_rows) > 0
    assert int(scoring["Failure Count"]) == sum(int(r["Failure Count"]) for r in scoring_rows)
    assert float(scoring["99%"]) <= max(float(r["99%"]) for r in scoring_rows)

    numbers = verdict["numbers"]
    p99, requests, failures = float(scoring["99%"]), int(scoring["Request Count"]), int(scoring["Failure Count"])
    assert numbers["p99_ms"] == p99
    assert numbers["scoring_requests"] == requests and numbers["scoring_failures"] == failures
    slo_p99 = float(verdict["checks"][1]["target"].removeprefix("<= ").removesuffix(" ms"))
    held = p99 <= slo_p99 and failures / requests <= 0.05 and numbers["malformed_failures"] == 0
    assert verdict["held"] is held
    assert run.returncode == (0 if held else 1)


def test_malformed_requests_are_expected_rejections_not_failures(generous: CliRun) -> None:
    stats = generous.csv_rows("locust_stats.csv")
    malformed = [r for r in stats if r["Name"].endswith("[malformed]")]
    sent = sum(int(r["Request Count"]) for r in malformed)
    assert sent > 0, "the mix should contain malformed requests"
    assert sum(int(r["Failure Count"]) for r in malformed) == 0
    aggregated = next(r for r in stats if r["Name"] == "Aggregated")
    assert int(aggregated["Failure Count"]) == 0  # every 4xx on bad input was a success
    assert generous.verdict()["numbers"]["expected_rejections"] == sent
    assert not generous.csv_rows("locust_failures.csv")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "localhost:3000"], "expected an http(s):// URL"),
        (["--host", "http://127.0.0.1:9", "--users", "0"], "must be greater than 0"),
        (["--host", "http://127.0.0.1:9", "--run-time", "soon"], "expected a duration"),
        (["--host", "http://127.0.0.1:9", "--scenario", "tsunami"], "invalid choice"),
        (["--host", "http://127.0.0.1:9", "--slo-error-rate", "2"], "between 0 and 1"),
        (["--host", "http://127.0.0.1:9", "--slo-p99-ms", "-5"], "greater than 0"),
        (["--host", "http://127.0.0.1:9", "--batch-size", "5000"], "at most 1000"),
        (["--users", "3"], "--host"),
    ],
    ids=["host-scheme", "users", "run-time", "scenario", "error-rate", "p99", "batch-size", "no-host"],
)
def test_bad_flags_fail_with_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    done = rtml_loadtest(*args, "--report", str(tmp_path / "r"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "r").exists()


# --- the batch and spike scenarios through real Locust --------------------------------------------------
# Only steady runs above. These two run side by side against the same server (no extra start-up) and are
# judged on what Locust itself wrote: the batch mix in _stats.csv, the spike's user count in _stats_history.csv.

BATCH_RUN_S = 5
SPIKE_RUN_S = 12  # shape (SPIKE_WINDOW): base users until 40% (4.8 s), all until 70% (8.4 s), base again until 12 s
SPIKE_USERS = 8  # base = 25% = 2; the shape jumps at max(spawn rate, users)/s, so within a second either way
SPIKE_BASE = max(1, round(SPIKE_USERS * SPIKE_BASE_SHARE))


def _scenario_command(service: RunningService, scenario: str, run_s: int, users: int, report: Path) -> list[str]:
    return [
        sys.executable, "-m", "services.cli", "loadtest", "--host", service.url, "--scenario", scenario,
        "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{run_s}s",
        "--slo-p99-ms", "10000", "--slo-error-rate", "0.05", "--report", str(report),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def scenario_runs(service: RunningService, tmp_path_factory: pytest.TempPathFactory) -> dict[str, CliRun]:
    """One short batch run and one short spike run, side by side; generous SLO, so only the mix and shape matter."""
    plans = {"batch": (BATCH_RUN_S, 2), "spike": (SPIKE_RUN_S, SPIKE_USERS)}
    commands = {}
    for scenario, (run_s, users) in plans.items():
        report = tmp_path_factory.mktemp(scenario)
        commands[scenario] = (_scenario_command(service, scenario, run_s, users, report), report)
    return side_by_side(commands)


def _rows_named(run: CliRun, name: str) -> list[dict[str, str]]:
    return [r for r in run.csv_rows("locust_stats.csv") if r["Name"] == name]


def test_batch_scenario_sends_only_batches_and_they_all_succeed(scenario_runs: dict[str, CliRun]) -> None:
    """--scenario batch must reach Locust as --tags batch: /predict_batch calls, all 200, and no /predict at all."""
    run = scenario_runs["batch"]
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.verdict()["plan"]["scenario"] == "batch"

    batch = _rows_named(run, "/predict_batch")
    assert len(batch) == 1, run.csv_rows("locust_stats.csv")
    assert int(batch[0]["Request Count"]) > 0
    assert int(batch[0]["Failure Count"]) == 0
    assert not _rows_named(run, "/predict"), "single /predict calls are not tagged batch"

    # the SLO summary is exactly the batch calls, and nothing at all failed (malformed ones got their 4xx)
    scoring = run.csv_rows("locust_scoring.csv")[0]
    assert int(scoring["Request Count"]) == int(batch[0]["Request Count"])
    assert int(scoring["Failure Count"]) == 0
    aggregated = _rows_named(run, "Aggregated")[0]
    assert int(aggregated["Failure Count"]) == 0
    assert not run.csv_rows("locust_failures.csv")


def _user_counts(run: CliRun) -> list[tuple[int, int]]:
    """(timestamp, users) per history sample while users were running (0 before the first and after the last)."""
    samples = [
        (int(r["Timestamp"]), int(r["User Count"]))
        for r in run.csv_rows("locust_stats_history.csv")
        if r["Name"] == "Aggregated"
    ]
    running = [i for i, (_, users) in enumerate(samples) if users > 0]
    assert running, f"no users ever ran: {samples}"
    return samples[running[0] : running[-1] + 1]


def test_spike_scenario_rises_to_all_users_and_falls_back(scenario_runs: dict[str, CliRun]) -> None:
    """The spike shape, as Locust recorded it: a base plateau, a jump to --users that holds, a fall back to base.

    Judged on the order of the phases, not on their length in seconds: three test workers share two cores,
    and a starved Locust samples late, so a sample-count bound would judge the machine, not the shape.
    """
    run = scenario_runs["spike"]
    assert run.returncode == 0, run.stdout + run.stderr
    samples = _user_counts(run)
    users = [u for _, u in samples]
    assert max(users) == SPIKE_USERS, samples

    first_peak = users.index(SPIKE_USERS)
    last_peak = len(users) - 1 - users[::-1].index(SPIKE_USERS)
    before, during, after = users[:first_peak], users[first_peak : last_peak + 1], users[last_peak + 1 :]
    assert before and max(before) <= SPIKE_BASE and SPIKE_BASE in before, f"no base plateau first: {samples}"
    assert during == [SPIKE_USERS] * len(during), f"the spike must hold at {SPIKE_USERS} users: {samples}"
    assert after and all(SPIKE_BASE <= u < SPIKE_USERS for u in after), samples
    assert after[-1] == SPIKE_BASE, f"no fall back to {SPIKE_BASE} users: {samples}"


def _log_time(log: str, message: str) -> datetime:
    """When Locust logged ``message`` (its log lines start with ``[YYYY-MM-DD HH:MM:SS,mmm]``)."""
    match = re.search(r"^\[([\d-]+ [\d:]+,\d+)\][^\n]*" + re.escape(message), log, re.MULTILINE)
    assert match, f"Locust never logged {message!r}:\n{log[-2000:]}"
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")


def test_spike_run_ends_by_itself_at_its_run_time(scenario_runs: dict[str, CliRun]) -> None:
    """The shape, not a kill or a timer, ends the run, and not before --run-time.

    With a shape class, headless Locust only arms its --run-time timer after the shape has finished, so
    a shape that never returned None would run until this module's 120 s subprocess timeout. Timed from
    Locust's own log, so a slow start-up on a busy machine does not count against the shape.
    """
    run = scenario_runs["spike"]
    log = (run.report / "locust.log").read_text(errors="replace")
    shaped_s = (_log_time(log, "Shape test completed, shutting down") - _log_time(log, "Shape test starting")).total_seconds()
    # Not early; the upper bound only separates "ended by itself" from "ran until killed" (120 s).
    assert SPIKE_RUN_S <= shaped_s < 4 * SPIKE_RUN_S, f"the shape ran {shaped_s:.2f}s"
    assert "Shape test stopping" in log and "--run-time limit reached" not in log


def test_ctrl_c_stops_early_and_the_run_is_still_judged(service: RunningService, tmp_path: Path) -> None:
    """SIGINT to `rtml loadtest` (a terminal's Ctrl-C): Locust stops, writes its report, and the
    verdict covers the time it ran. (SIGTERM, the same path, is used by the rolling restart test.)"""
    report = tmp_path / "stopped"
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "loadtest", "--host", service.url, "--users", "2", "--spawn-rate", "2",
         "--run-time", "10m", "--slo-p99-ms", "10000", "--slo-error-rate", "0.05", "--report", str(report)],
        cwd=REPO_ROOT, env=_env(TOKEN), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        # Locust rewrites its stats CSV every second once it runs: wait for answered requests in it.
        while "/predict," not in ((report / "locust_stats.csv").read_text() if (report / "locust_stats.csv").exists() else ""):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    run = CliRun(process.returncode, stdout, stderr, report)
    verdict = run.verdict()
    assert run.returncode == 0 and "SLO HELD" in stdout, stdout + stderr
    assert verdict["locust"]["stopped_early"] is True and verdict["locust"]["wall_s"] < 120
    assert "(stopped early)" in stdout
    assert verdict["numbers"]["scoring_requests"] > 0 and (report / "report.html").is_file()
