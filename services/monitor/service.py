"""Wiring of the monitor: consumer group on predictions and labels, control-topic reader,
retraining-request producer, and the ops HTTP server with the report."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from services.common.auth import BearerAuth
from services.common.events import EventError, Label, ModelEvent, PredictionLog, Topics, TrainingRequest, decode
from services.common.kafka import BatchConsumer, ShutdownFlag, ensure_topics, make_consumer, make_producer
from services.common.lost_log import ShortLogGuard
from services.common.ops_http import OpsServer, ops_app
from services.common.settings import Settings
from services.monitor.config import MonitorConfig
from services.monitor.control import ControlReader
from services.monitor.metrics import monitor_registry
from services.monitor.references import RegistryReferences
from services.monitor.report import SnapshotPaths, write_snapshot
from services.monitor.routes import monitor_routes
from services.monitor.state import MonitorState
from services.registry import ModelRegistry

log = logging.getLogger(__name__)

GROUP_ID = "rtml-monitor"
DATA_TOPICS = (Topics.PREDICTIONS, Topics.LABELS)
CONTROL_TOPICS = (Topics.MODEL_EVENTS, Topics.TRAINING_REQUESTS)
PUBLISH_TIMEOUT_S = 15.0


class MonitorService:
    """The running monitor. ``run(stop)`` blocks; ``state`` and ``snapshot_report()`` are its Python API."""

    def __init__(self, settings: Settings, config: MonitorConfig | None = None, group_id: str = GROUP_ID) -> None:
        self.settings = settings
        self.config = config or MonitorConfig.from_settings(settings)
        self.group_id = group_id
        references = RegistryReferences(
            ModelRegistry(settings.registry_uri, settings.s3_endpoint), self.config.model_name
        )
        self.state = MonitorState(self.config, references, references.held_out)
        self.ready = threading.Event()
        self._producer: KafkaProducer | None = None
        self._control: ControlReader | None = None

    # ---- Python API ----------------------------------------------------------------
    def snapshot_report(self) -> SnapshotPaths:
        """Write the report as PNG + HTML into ``<data_dir>/reports``; returns both paths."""
        return write_snapshot(self.state.report_data(), self.settings.data_dir / "reports")

    # ---- record handling -----------------------------------------------------------
    def _skip_malformed(self, record: ConsumerRecord, error: EventError) -> None:
        self.state.observe_malformed(record.topic)
        log.warning(
            "malformed message skipped",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "field": error.field,
                "reason": error.reason,
            },
        )

    def handle_control(self, records: list[ConsumerRecord]) -> None:
        for record in records:
            try:
                if record.topic == Topics.MODEL_EVENTS:
                    self.state.observe_model_event(decode(ModelEvent, record.value))
                else:
                    self.state.observe_training_request(decode(TrainingRequest, record.value))
            except EventError as exc:
                self._skip_malformed(record, exc)

    def handle(self, batch: list[ConsumerRecord]) -> None:
        """One batch of predictions and labels; offsets are committed only after this returns."""
        self._poll_control()
        for record in batch:
            try:
                if record.topic == Topics.PREDICTIONS:
                    self.state.observe_prediction(decode(PredictionLog, record.value))
                else:
                    self.state.observe_label(decode(Label, record.value))
            except EventError as exc:
                self._skip_malformed(record, exc)
        self.state.refresh()
        self._publish_if_due()

    def _poll_control(self) -> None:
        if self._control is not None:
            self.handle_control(self._control.poll(0))

    def _publish_if_due(self) -> None:
        request = self.state.due_request(datetime.now(UTC))
        if request is None or self._producer is None:
            return
        try:
            self._producer.send(Topics.TRAINING_REQUESTS, key=request.reason.encode(), value=request.to_json()).get(
                timeout=PUBLISH_TIMEOUT_S
            )
        except Exception:
            # Not recorded, so the next batch asks again while the condition holds.
            log.exception(
                "could not publish the retraining request; will retry", extra={"request_id": request.request_id}
            )
            return
        self.state.observe_training_request(request)
        log.warning(
            "retraining requested",
            extra={"request_id": request.request_id, "reason": request.reason, "evidence": request.evidence},
        )

    def readiness(self) -> tuple[bool, str]:
        if not self.ready.is_set():
            return False, "reading control topics"
        return True, "consuming"

    # ---- lifecycle -----------------------------------------------------------------
    def run(self, stop: ShutdownFlag | threading.Event) -> None:
        """Consume until ``stop`` is set; the batch in flight is finished and committed first."""
        settings = self.settings
        app = ops_app(
            self.readiness,
            monitor_routes(self.state, self.snapshot_report, BearerAuth(settings.api_token)),
            registry=monitor_registry(self.state),
        )
        ops = OpsServer(app, settings.bind_host, settings.monitor_port).start()
        try:
            ensure_topics(settings)
            self._control = ControlReader(settings, CONTROL_TOPICS)
            # Every earlier request and promotion first: that is what keeps requests from repeating.
            self.handle_control(self._control.read_to_end())
            self._producer = make_producer(settings)
            guard = ShortLogGuard(settings, "monitor")
            consumer = make_consumer(settings, self.group_id, DATA_TOPICS, listener=guard)
            self.ready.set()
            log.info("monitor started", extra={"group": self.group_id, "port": settings.monitor_port})
            BatchConsumer(consumer, self.handle, on_idle=self._idle, guard=guard).run(stop)
        finally:
            self.ready.clear()
            if self._producer is not None:
                self._producer.close(timeout=10)
            if self._control is not None:
                self._control.close()
            ops.stop()
            log.info("monitor stopped")

    def _idle(self) -> None:
        self._poll_control()
        self._publish_if_due()  # the cool-down may have run out while traffic holds still
