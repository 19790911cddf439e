"""Wiring of the training service: the rtml.training-requests consumer group, admission, the run
worker and the ops HTTP server with the /runs routes."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from kafka.consumer.fetcher import ConsumerRecord

from services.common.auth import BearerAuth
from services.common.events import EventError, Topics, TrainingRequest, decode
from services.common.kafka import BatchConsumer, ShutdownFlag, ensure_topics, make_consumer
from services.common.lost_log import ShortLogGuard
from services.common.ops_http import OpsServer, ops_app
from services.common.settings import Settings
from services.training.admission import Admission, Decision, RequestLedger
from services.training.executor import RunExecutor
from services.training.metrics import TrainingMetrics
from services.training.parameters import RunRequestBody
from services.training.routes import training_routes
from services.training.scheduler import RunScheduler
from services.training.store import RunRecord, RunStore, new_run_id

log = logging.getLogger(__name__)

GROUP_ID = "rtml-training"


class TrainingService:
    """``run(stop)`` blocks until stop; ``runs`` and ``request_run`` are its Python API."""

    def __init__(self, settings: Settings, group_id: str = GROUP_ID) -> None:
        self.settings = settings
        self.group_id = group_id
        root = settings.data_dir / "training"
        self.runs = RunStore(root / "runs")
        self.ledger = RequestLedger(root / "requests.jsonl", self.runs)
        self.admission = Admission(self.ledger, self.runs, settings.training_cooldown_s)
        self.metrics = TrainingMetrics()
        self.scheduler = RunScheduler(self.runs, RunExecutor(settings, self.runs), self.metrics)
        self.ready = threading.Event()
        self._lock = threading.Lock()  # admission and queueing are one step for the loop and HTTP

    # ---- requests ------------------------------------------------------------------
    def handle(self, batch: list[ConsumerRecord]) -> None:
        """One batch of requests; never waits on a run, so the poll loop keeps its group membership."""
        for record in batch:
            try:
                request = decode(TrainingRequest, record.value)
            except EventError as exc:
                self.metrics.requests.labels(source="topic", decision="invalid").inc()
                log.warning(
                    "malformed training request skipped",
                    extra={"partition": record.partition, "offset": record.offset, "field": exc.field, "reason": exc.reason},
                )
                continue
            self.request_run(request, source="topic")

    def request_run(
        self, request: TrainingRequest, source: str, parameters: dict[str, object] | None = None, cooldown: bool = True
    ) -> tuple[Decision, RunRecord | None, str]:
        now = datetime.now(UTC)
        with self._lock:
            verdict = self.admission.decide(request.request_id, now, cooldown=cooldown)
            if verdict.decision == Decision.ACCEPTED and not self.scheduler.has_room():
                verdict = verdict.__class__(Decision.BUSY, "a run is already waiting; one more may queue at most")
            record: RunRecord | None = None
            if verdict.decision == Decision.ACCEPTED:
                record = self.runs.save(
                    RunRecord(
                        id=new_run_id(now),
                        reason=request.reason,
                        request_ids=[request.request_id],
                        requested_by=request.requested_by,
                        evidence=request.evidence,
                        parameters=parameters or {},
                        mode="kfp" if self.settings.kfp_host else "local",
                        created_at=now,
                    )
                )
                self.scheduler.submit(record)
            if verdict.decision != Decision.DUPLICATE:
                # A refused request is remembered too: redelivered later it must not start a run then.
                self.ledger.record(request.request_id, verdict.decision, now, record.id if record else None)
        self.metrics.requests.labels(source=source, decision=verdict.decision.value).inc()
        log.info(
            "training request " + verdict.decision.value,
            extra={"request_id": request.request_id, "reason": request.reason, "source": source,
                   "run_id": record.id if record else None, "detail": verdict.detail},
        )
        return verdict.decision, record, verdict.detail

    def start_from_http(self, body: RunRequestBody) -> tuple[int, RunRecord | None, str]:
        """POST /runs: an operator's explicit request skips the cool-down, not the de-duplication."""
        now = datetime.now(UTC)
        request = TrainingRequest(
            request_id=body.request_id or f"api-{new_run_id(now).removeprefix('run-')}",
            reason=body.reason,
            requested_by=body.requested_by,
            timestamp=now,
        )
        overrides = body.parameters.model_dump(exclude_none=True)
        decision, record, detail = self.request_run(request, "http", overrides, cooldown=False)
        status = {Decision.ACCEPTED: 202, Decision.DUPLICATE: 409, Decision.BUSY: 429}.get(decision, 429)
        return status, record, detail

    def readiness(self) -> tuple[bool, str]:
        return (True, "consuming") if self.ready.is_set() else (False, "joining the training-requests group")

    # ---- lifecycle -----------------------------------------------------------------
    def run(self, stop: ShutdownFlag | threading.Event) -> None:
        settings = self.settings
        app = ops_app(
            self.readiness,
            training_routes(self.runs, self.start_from_http, BearerAuth(settings.api_token)),
            registry=self.metrics.registry,
        )
        ops = OpsServer(app, settings.bind_host, settings.training_port).start()
        try:
            ensure_topics(settings)
            self.scheduler.start()
            guard = ShortLogGuard(settings, "training")
            consumer = make_consumer(settings, self.group_id, [Topics.TRAINING_REQUESTS], listener=guard)
            self.ready.set()
            log.info(
                "training service started",
                extra={"group": self.group_id, "port": settings.training_port,
                       "mode": "kfp" if settings.kfp_host else "local", "cooldown_s": settings.training_cooldown_s},
            )
            BatchConsumer(consumer, self.handle, guard=guard).run(stop)
        finally:
            self.ready.clear()
            self.scheduler.stop()
            ops.stop()
            log.info("training service stopped")
