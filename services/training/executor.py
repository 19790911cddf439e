"""Carries out one run: snapshot the logged events, then the pipeline (kfp.local child process,
or a Kubeflow Pipelines API when RTML_KFP_HOST is set); returns the gate's outcome."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from typing import Any

from services.common.settings import REPO_ROOT, Settings
from services.registry import ModelRegistry
from services.training.parameters import pipeline_arguments
from services.training.snapshot import TopicSnapshot, snapshot_topics, window_start
from services.training.store import RunRecord, RunStore

log = logging.getLogger(__name__)

MODEL_NAME = "fraud"
KFP_POLL_S = 10.0
KFP_FINAL = {"SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"}


class RunFailed(RuntimeError):
    """The run ended without an outcome; the message says which stage and why."""


def snapshot_uri(settings: Settings, run_id: str) -> str:
    """Local: under data_dir. Cluster: the pipeline pods must read it, so it goes beside the registry."""
    if not settings.kfp_host:
        return (settings.data_dir / "training" / "snapshots" / run_id).resolve().as_uri()
    base = settings.training_snapshot_uri or settings.registry_uri.rstrip("/").rsplit("/", 1)[0] + "/training-snapshots"
    return f"{base.rstrip('/')}/{run_id}"


class RunExecutor:
    def __init__(self, settings: Settings, runs: RunStore) -> None:
        self.settings = settings
        self.runs = runs
        self.stop = threading.Event()
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def execute(self, record: RunRecord) -> tuple[RunRecord, dict[str, Any]]:
        """Returns the record (with snapshot and ids filled in) and the outcome; raises RunFailed."""
        try:
            snap = snapshot_topics(self.settings, snapshot_uri(self.settings, record.id))
        except Exception as exc:
            raise RunFailed(f"snapshot of the logged events failed: {exc}") from exc
        arguments = self._arguments(record, snap)
        record = self.runs.update(record, snapshot=snap.summary(), parameters=arguments)
        if self.settings.kfp_host:
            return self._cluster(record, arguments)
        return record, self._local(record, arguments)

    def _arguments(self, record: RunRecord, snap: TopicSnapshot) -> dict[str, Any]:
        arguments = pipeline_arguments(self.settings, record.parameters)
        if not arguments["window_start"]:
            arguments["window_start"] = window_start(snap, self.settings.training_window_hours)
        arguments["transactions_path"] = snap.transactions_path
        arguments["labels_path"] = snap.labels_path
        return arguments

    # ---- local: kfp.local in a child process --------------------------------------
    def _local(self, record: RunRecord, arguments: dict[str, Any]) -> dict[str, Any]:
        work = self.runs.directory.parent / "work"
        work.mkdir(parents=True, exist_ok=True)
        args_path, outcome_path = work / f"{record.id}.args.json", work / f"{record.id}.outcome.json"
        args_path.write_text(json.dumps(arguments))
        outcome_path.unlink(missing_ok=True)
        log_path = self.runs.log_path(record.id)
        with log_path.open("ab") as out, self._lock:
            if self.stop.is_set():
                raise RunFailed("interrupted: the training service shut down before the pipeline started")
            self._child = subprocess.Popen(
                [sys.executable, "-m", "services.training.local_run", str(args_path), str(outcome_path)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                env={**os.environ, "RTML_DATA_DIR": str(self.settings.data_dir.resolve())},
                start_new_session=True,  # its own process group: a shutdown ends every step it spawned
            )
        code = self._child.wait()
        with self._lock:
            self._child = None
        if self.stop.is_set() and code != 0:
            raise RunFailed("interrupted: the training service shut down during the run")
        result = json.loads(outcome_path.read_text()) if outcome_path.is_file() else {}
        if code != 0 or "outcome" not in result:
            raise RunFailed(result.get("error") or f"pipeline process exited with {code}; see {log_path}")
        return dict(result["outcome"])

    def interrupt(self) -> None:
        """Stop waiting on a cluster run and end a local one in flight (its whole process group)."""
        self.stop.set()
        with self._lock:
            child = self._child
            if child is not None and child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)

    # ---- cluster: Kubeflow Pipelines API -------------------------------------------
    def _cluster(self, record: RunRecord, arguments: dict[str, Any], client: Any = None) -> tuple[RunRecord, dict[str, Any]]:
        import kfp

        from pipelines.runner import submit

        kfp_client = client or kfp.Client(host=self.settings.kfp_host)
        started = datetime.now(UTC)
        kfp_run_id = submit(
            self.settings.kfp_host, self.settings, arguments, self.settings.training_experiment, record.id, kfp_client
        )
        record = self.runs.update(record, kfp_run_id=kfp_run_id)
        log.info("run submitted to Kubeflow", extra={"run_id": record.id, "kfp_run_id": kfp_run_id})
        state = ""
        while not self.stop.is_set():
            state = str(kfp_client.get_run(kfp_run_id).state or "").upper()
            if state in KFP_FINAL:
                break
            self.stop.wait(KFP_POLL_S)
        if state != "SUCCEEDED":
            raise RunFailed(f"Kubeflow run {kfp_run_id} ended {state or 'unobserved (service stopped)'}")
        return record, registry_outcome(self.settings, started, kfp_run_id)


def registry_outcome(settings: Settings, since: datetime, kfp_run_id: str) -> dict[str, Any]:
    """A cluster run's outcome as the registry shows it (the gate's return value stays in the cluster)."""
    registry = ModelRegistry(settings.registry_uri, settings.s3_endpoint)
    fresh = [v for v in registry.versions(MODEL_NAME) if v.created_at >= since]
    champion = registry.champion(MODEL_NAME)
    registered = {v.kind: v.version for v in fresh}
    return {
        "promoted": champion is not None and champion.version in registered.values(),
        "registered": registered,
        "champion_after": champion.version if champion else None,
        "reason": str(fresh[-1].extra.get("gate", "")) if fresh else "no version registered",
        "kfp_run_id": kfp_run_id,
    }
