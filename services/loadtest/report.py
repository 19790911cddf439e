"""Reading a Locust run's CSV report: the scoring-request summary and the expected rejections."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from services.loadtest.scenarios import SCORING_SUMMARY_SUFFIX
from services.loadtest.traffic import is_malformed_name

CSV_PREFIX = "locust"  # DIR/locust_stats.csv, DIR/locust_scoring.csv, ...
HTML_NAME = "report.html"


class ReportError(Exception):
    """The run left no usable report (Locust failed to start, or the files are not Locust's)."""


@dataclass(frozen=True)
class RunNumbers:
    """What the SLO is judged on, read back from the CSV files."""

    scoring_requests: int
    scoring_failures: int
    p99_ms: float
    median_ms: float
    requests_per_s: float
    malformed_requests: int
    malformed_failures: int  # malformed requests answered with anything but a 4xx

    @property
    def error_rate(self) -> float:
        return self.scoring_failures / self.scoring_requests if self.scoring_requests else 0.0

    @property
    def expected_rejections(self) -> int:
        return self.malformed_requests - self.malformed_failures


@dataclass(frozen=True)
class ReportFiles:
    directory: Path

    @property
    def stats_csv(self) -> Path:
        return self.directory / f"{CSV_PREFIX}_stats.csv"

    @property
    def scoring_csv(self) -> Path:
        return self.directory / f"{CSV_PREFIX}{SCORING_SUMMARY_SUFFIX}"

    @property
    def html(self) -> Path:
        return self.directory / HTML_NAME

    @property
    def csv_prefix(self) -> Path:
        return self.directory / CSV_PREFIX


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise ReportError(f"{path} was not written")
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _int(row: dict[str, str], column: str, path: Path) -> int:
    try:
        return int(row[column])
    except (KeyError, ValueError):
        raise ReportError(f"{path}: column {column!r} missing or not a number") from None


def _float(row: dict[str, str], column: str, path: Path) -> float:
    try:
        return float(row[column])
    except (KeyError, ValueError):
        raise ReportError(f"{path}: column {column!r} missing or not a number") from None


def read_numbers(files: ReportFiles) -> RunNumbers:
    scoring_rows = _rows(files.scoring_csv)
    if len(scoring_rows) != 1:
        raise ReportError(f"{files.scoring_csv}: expected one summary row, found {len(scoring_rows)}")
    scoring = scoring_rows[0]
    path = files.scoring_csv
    malformed = [r for r in _rows(files.stats_csv) if is_malformed_name(r.get("Name", ""))]
    return RunNumbers(
        scoring_requests=_int(scoring, "Request Count", path),
        scoring_failures=_int(scoring, "Failure Count", path),
        p99_ms=_float(scoring, "99%", path),
        median_ms=_float(scoring, "Median Response Time", path),
        requests_per_s=_float(scoring, "Requests/s", path),
        malformed_requests=sum(_int(r, "Request Count", files.stats_csv) for r in malformed),
        malformed_failures=sum(_int(r, "Failure Count", files.stats_csv) for r in malformed),
    )
