"""`python -m services.monitor` end to end: drifted traffic gives exactly one retraining request,
even across a SIGKILL and restart; a promotion is marked in /api/state and in the report, which
renders in real headless Chromium."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import image as mpimg

from services.common.events import ModelEvent, Topics
from services.common.settings import REPO_ROOT, Settings, child_env
from tests.monitor.conftest import api_state, http_get, publish, training_requests, wait_for, wait_ready
from tests.monitor.traffic import payments, prediction, reference_for, register_version

CHROMIUM = "/usr/bin/chromium"
PROMOTION_RGB = np.array([0xC0, 0x39, 0x2B]) / 255  # report.PROMOTION_COLOUR


def _env(settings: Settings) -> dict[str, str]:
    env = child_env()
    env.update(
        RTML_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        RTML_DATA_DIR=str(settings.data_dir),
        RTML_MONITOR_PORT=str(settings.monitor_port),
        RTML_MONITOR_WINDOW=str(settings.monitor_window),
        RTML_MONITOR_MIN_SAMPLES=str(settings.monitor_min_samples),
        RTML_KAFKA_MAX_POLL_INTERVAL_MS=str(settings.kafka_max_poll_interval_ms),
        RTML_KAFKA_SESSION_TIMEOUT_MS=str(settings.kafka_session_timeout_ms),
        RTML_LOG_FORMAT="console",
        PYTHONPATH=str(REPO_ROOT),
    )
    return env


@contextmanager
def monitor_process(settings: Settings, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "services.monitor"], env=_env(settings), stdout=out, stderr=out)
    try:
        wait_ready(settings, timeout_s=90)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _monitor_requests(settings: Settings) -> list[Any]:
    return [r for r in training_requests(settings) if r.requested_by == "monitor"]


def _screenshot(url: str, out: Path) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--screenshot={out}",
                "--window-size=1400,2000",
                url,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def test_drift_asks_once_across_restart_and_the_report_marks_the_promotion(
    monitor_settings: Settings, tmp_path: Path
) -> None:
    settings = monitor_settings
    stream = payments(7000)
    v1 = register_version(settings.registry_uri, reference_for([p.transaction for p in stream[:3000]]), tmp_path)
    log = tmp_path / "monitor.log"

    def send(rows: list[Any], version: str, factor: float) -> None:
        publish(
            settings,
            [
                (Topics.PREDICTIONS, p.transaction.transaction_id, prediction(p.transaction, version, factor))
                for p in rows
            ],
        )

    with monitor_process(settings, log) as proc:
        send(stream[3000:4000], v1, 1.0)  # stable
        send(stream[4000:5500], v1, 3.0)  # amounts tripled from here on
        wait_for("2500 predictions read", lambda: api_state(settings)["counts"]["predictions"] == 2500)
        # The count moves while the batch is read; the request is published once the batch is done.
        wait_for("the drift request recorded", lambda: bool(api_state(settings)["requests"]))
        first = _monitor_requests(settings)
        assert len(first) == 1, first
        request = first[0]
        assert request.reason == "drift" and request.request_id == f"monitor-{v1}-1"
        assert request.evidence["model_version"] == v1
        crossed = request.evidence["drift"]["crossed"]
        assert crossed["txn_amount_log"] >= 0.25 and request.evidence["drift"]["window_predictions"] >= 500
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    # Restarted: windows start empty, the ledger is rebuilt from rtml.training-requests.
    with monitor_process(settings, log) as proc:
        assert [r["request_id"] for r in api_state(settings)["requests"]] == [request.request_id]
        send(stream[5500:6500], v1, 3.0)  # the same episode goes on
        wait_for(
            "drift seen again after restart",
            lambda: (
                api_state(settings)["drift"]["psi"].get("txn_amount_log", 0) >= 0.25
                and api_state(settings)["drift"]["window"] == 1000
            ),
        )
        assert len(_monitor_requests(settings)) == 1

        # A retrained model on the new amounts is promoted and starts serving.
        v2 = register_version(
            settings.registry_uri, reference_for([p.transaction for p in stream[:3000]], 3.0), tmp_path
        )
        promoted_at = datetime.now(UTC)
        event = ModelEvent(
            event="promoted",
            model_name="fraud",
            version=v2,
            artifact_uri="file:///x",
            previous_version=v1,
            timestamp=promoted_at,
        )
        publish(settings, [(Topics.MODEL_EVENTS, "fraud", event)])
        wait_for("promotion marked", lambda: any(p["version"] == v2 for p in api_state(settings)["promotions"]))
        send(stream[6500:7000], v2, 3.0)
        wait_for("v2 serving", lambda: api_state(settings)["counts"]["predictions"] >= 1500)
        state = api_state(settings)
        assert state["current_version"] == v2 and state["drift"]["window"] == 500
        assert max(state["drift"]["psi"][n] for n in ("txn_amount_log", "txn_has_device")) < 0.25
        assert [v["version"] for v in state["versions_seen"]] == [v1, v2]
        assert state["promotions"] == [
            {"event": "promoted", "version": v2, "previous_version": v1, "at": promoted_at.isoformat()}
        ]
        assert len(_monitor_requests(settings)) == 1  # the new champion is stable against its own reference

        status, page = http_get(settings, "/report")
        assert status == 200
        html = page.decode()
        assert f"data-version='{v2}'" in html and f"promoted <b>{v2}</b> (was {v1})" in html
        assert "data:image/png;base64," in html
        shot = tmp_path / "report.png"
        _screenshot(f"http://{settings.bind_host}:{settings.monitor_port}/report", shot)
        status, body = http_get(settings, "/report/snapshot", method="POST")
        assert status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0

    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1400) and shot.stat().st_size > 50_000
    assert pixels.std() > 0.05  # not a blank page
    # The dashed promotion lines and labels are drawn in their own red.
    red = np.all(np.abs(pixels - PROMOTION_RGB) < 0.08, axis=-1).sum()
    assert red > 200, f"only {red} promotion-coloured pixels in the screenshot"

    import json

    paths = json.loads(body)
    snap_png, snap_html = Path(paths["png"]), Path(paths["html"])
    assert snap_png.parent == settings.data_dir / "reports" and snap_html.parent == snap_png.parent
    assert snap_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and snap_png.stat().st_size > 50_000
    assert f"promoted <b>{v2}</b>" in snap_html.read_text()
