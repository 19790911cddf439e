"""`rtml simulate` flags: the Parquet output matches the in-process stream; bad flags exit 2 in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from services.cli.main import main
from services.simulator import SimulatorConfig, generate, to_frames, write_parquet

SIMULATE = [sys.executable, "-m", "services.cli", "simulate"]


def test_cli_parquet_matches_generated_stream(tmp_path: Path) -> None:
    result = subprocess.run(
        [*SIMULATE, "--events", "20000", "--seed", "7", "--no-kafka", "--parquet", str(tmp_path / "cli")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "simulated 20000 transactions" in result.stdout
    write_parquet(SimulatorConfig(events=20_000, seed=7), tmp_path / "api")
    for name in ("transactions.parquet", "labels.parquet"):
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "api" / name).read_bytes()

    txns, labels = to_frames(generate(SimulatorConfig(events=20_000, seed=7)))
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "cli" / "transactions.parquet"), txns)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "cli" / "labels.parquet"), labels)
    assert str(txns["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert len(txns) == 20_000 and 0 < len(labels) < 20_000


def test_frames_carry_every_transaction_field_and_ground_truth() -> None:
    txns, labels = to_frames(generate(SimulatorConfig(events=300, seed=2)))
    assert list(txns.columns) == [
        "schema_version", "transaction_id", "user_id", "merchant_id", "amount", "currency",
        "country", "channel", "device_id", "timestamp", "is_fraud", "pattern",
    ]  # fmt: skip
    assert list(labels.columns) == ["transaction_id", "is_fraud", "timestamp"]
    assert set(labels["transaction_id"]) <= set(txns["transaction_id"])


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--events", "0"], "--events"),
        (["--events", "ten"], "--events"),
        (["--rate", "-5"], "--rate"),
        (["--seed", "x"], "--seed"),
        (["--drift-at", "0"], "--drift-at"),
        (["--events", "100", "--drift-at", "100"], "drift_at"),
        (["--users", "3", "--no-kafka", "--parquet", "out"], "users"),
        (["--merchants", "-1"], "--merchants"),
        (["--start", "tomorrow"], "--start"),
        (["--start", "2026-11-01T00:00:00"], "timezone"),
        (["--fraud-rate", "1.5"], "--fraud-rate"),
        (["--label-share", "nan%"], "--label-share"),
        (["--no-kafka"], "--parquet"),
        (["--bogus"], "--bogus"),
    ],
)
def test_bad_flags_exit_2_with_one_line(argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(["simulate", *argv])
    except SystemExit as exit_:  # argparse reports bad values by exiting
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and complaint in lines[0] and "Traceback" not in captured.err
    assert captured.out == ""


def test_bad_flag_from_the_shell_has_no_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.simulator", "--events", "5", "--drift-at", "7"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "drift_at" in result.stderr
