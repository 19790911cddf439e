"""The BentoML service: builds the scoring components at start-up and serves them.

``python -m services.inference`` runs ``bentoml serve`` on this class. BentoML's own
probes are used (/livez, and /readyz backed by ``__is_ready__``); its access log and
per-request metrics middleware are off because the service records its own latency
histogram (served at /metrics), and tracing skips the scoring paths (measured cost:
docs/inference.md).
"""

from __future__ import annotations

import logging
import time

import bentoml

from services.common.events import Topics
from services.common.heap import freeze_startup_heap
from services.common.kafka import ensure_topics
from services.common.logs import configure_logging
from services.common.settings import get_settings
from services.registry import ModelRegistry

from .auth import BearerAuth
from .batcher import MicroBatcher
from .champion import ChampionSlot
from .engine import ScoringEngine
from .http_api import ScoringApi, build_app
from .metrics import InferenceMetrics
from .model_watcher import ModelWatcher
from .online_features import FeatureStoreUnavailable, OnlineFeatureReader
from .prediction_log import PredictionLogger

SCORING_PATHS = ["/predict", "/predict_batch"]
_READINESS_CACHE_S = 2.0

api_app = build_app()


@bentoml.service(
    name="rtml-inference",
    # Two cores per pod: one worker process owns one core; a second only contends (docs/inference.md).
    workers=1,
    traffic={"timeout": 30},
    logging={"access": {"enabled": False}},
    metrics={"enabled": False},
    tracing={"excluded_urls": SCORING_PATHS},
)
@bentoml.asgi_app(api_app, path="/")
class FraudScoring:
    def __init__(self) -> None:
        # Feast is imported here, in the worker, not at module level: `bentoml serve` imports this
        # module in its supervisor process too, only to read the service's configuration.
        from services.feature.store import open_store

        self.settings = get_settings()
        self.log = configure_logging(self.settings, "inference")
        self.metrics = InferenceMetrics()
        registry = ModelRegistry(self.settings.registry_uri, self.settings.s3_endpoint)
        self.slot = ChampionSlot(registry, self.settings.data_dir / "model-cache", self.metrics)
        self.features = OnlineFeatureReader(open_store(self.settings))
        try:
            ensure_topics(self.settings, [Topics.PREDICTIONS, Topics.MODEL_EVENTS], timeout_s=5.0)
        except RuntimeError as exc:
            # Scoring does not need Kafka: logs are buffered and the registry is polled until it is back.
            self.log.warning("Kafka unreachable at start-up", extra={"reason": str(exc)})
        self.watcher = ModelWatcher(self.settings, self.slot, self.settings.inference_registry_poll_s)
        self.watcher.connect()
        self.slot.follow_registry()
        self.watcher.start()
        self.prediction_log = PredictionLogger(self.settings, self.metrics, self.settings.inference_log_buffer).start()
        engine = ScoringEngine(self.features, self.slot, self.metrics)
        self.batcher: MicroBatcher = MicroBatcher(engine.score, self.settings.inference_max_batch)
        api_app.state.api = ScoringApi(BearerAuth(self.settings.api_token), self.batcher, self.prediction_log, self.metrics)
        self._features_ok_at = 0.0
        # Last: everything built so far lives as long as the process (docs/inference.md, "Tail latency").
        freeze_startup_heap()
        self.log.info(
            "inference service started",
            extra={
                "model_version": self.slot.current.version if self.slot.current else None,
                "auth": "bearer" if self.settings.api_token.get_secret_value() else "off",
                "max_batch": self.settings.inference_max_batch,
            },
        )

    def __is_ready__(self) -> bool:
        if self.slot.current is None:
            return False
        api = api_app.state.api
        if api is not None and api.draining:  # on its way out: balancers should stop picking it
            return False
        if time.monotonic() - self._features_ok_at < _READINESS_CACHE_S:
            return True
        try:
            self.features.probe()
        except FeatureStoreUnavailable as exc:
            self.log.warning("not ready: feature store does not answer", extra={"reason": str(exc)})
            return False
        self._features_ok_at = time.monotonic()
        return True

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        api_app.state.api = None
        self.batcher.close()
        self.watcher.stop()
        self.prediction_log.stop()
        logging.getLogger(__name__).info("inference service stopped")

