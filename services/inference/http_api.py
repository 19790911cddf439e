"""The scoring HTTP endpoints as a lean Starlette app, mounted inside the BentoML service.

BentoML's typed-API machinery (per-request schema work, IO descriptors) costs several
times the whole scoring path here (see docs/inference.md), so the hot paths are plain
ASGI handlers; BentoML still serves them, with its probes, lifecycle and server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.events import Transaction

from .auth import BearerAuth, unauthorized
from .batcher import MicroBatcher
from .engine import NoModelServed
from .explanations import explanation
from .metrics import InferenceMetrics
from .online_features import FeatureStoreUnavailable
from .openapi import openapi_document
from .prediction_log import PendingLog, PredictionLogger
from .request_body import (
    MAX_BATCH_BODY_BYTES,
    MAX_SINGLE_BODY_BYTES,
    RequestError,
    check_content_type,
    check_size,
    parse_batch,
    parse_predict,
)
from .scoring import Scored, ScoringError

log = logging.getLogger(__name__)

_UNAVAILABLE = (NoModelServed, FeatureStoreUnavailable, ScoringError)


def _json(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(payload).encode(), status_code=status, media_type="application/json", headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refusing early (without reading it all) once it passes ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestError(400, "Content-Length", f"not a byte count: {declared!r}")
        check_size(int(declared), limit)
        # The server holds the body to its declared length, so it can be read in one go.
        return await request.body()
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        check_size(received, limit)
        chunks.append(chunk)
    return b"".join(chunks)


class ScoringApi:
    """Request handling: auth, parsing, batching, answering, logging."""

    def __init__(
        self, auth: BearerAuth, batcher: MicroBatcher[Transaction, Scored], logger: PredictionLogger, metrics: InferenceMetrics
    ) -> None:
        self.auth = auth
        self.batcher = batcher
        self.logger = logger
        self.metrics = metrics
        self.draining = False

    async def drain(self, request: Request) -> Response:
        """From now on every answer closes its connection (the pod's preStop hook calls this)."""
        if not self.auth.allows(request.headers.get("authorization")):
            return unauthorized()
        if not self.draining:
            self.draining = True
            self.metrics.draining.set(1)
            log.info("draining: every answer now closes its connection")
        return _json({"draining": True}, 202)

    async def _handle(self, request: Request, endpoint: str, batch: bool) -> Response:
        started = time.perf_counter()
        status = 200
        try:
            if not self.auth.allows(request.headers.get("authorization")):
                status = 401
                return unauthorized()
            check_content_type(request.headers.get("content-type"))
            body = await _read_body(request, MAX_BATCH_BODY_BYTES if batch else MAX_SINGLE_BODY_BYTES)
            explain = False
            if batch:
                transactions = parse_batch(body)
            else:
                txn, explain = parse_predict(body)
                transactions = [txn]
            scored = await self.batcher.submit(transactions)
            answers = [s.answer() for s in scored]
            if explain:
                answers[0]["explanation"] = await asyncio.to_thread(explanation, scored[0])
            response = _json({"predictions": answers} if batch else answers[0])
            self._log(scored, started)
            return response
        except RequestError as exc:
            status = exc.status
            return _json(exc.as_json(), exc.status)
        except ClientDisconnect:
            status = 499
            return Response(status_code=400)
        except _UNAVAILABLE as exc:
            status = 503
            log.warning("cannot score", extra={"endpoint": endpoint, "reason": str(exc)})
            return _json({"error": f"service unavailable: {exc}"}, 503, {"Retry-After": "1"})
        finally:
            self.metrics.request_latency.labels(endpoint).observe(time.perf_counter() - started)
            self.metrics.requests.labels(endpoint, str(status)).inc()

    def _log(self, scored: Sequence[Scored], started: float) -> None:
        latency_ms = (time.perf_counter() - started) * 1000.0
        now = datetime.now(UTC)
        self.logger.submit([PendingLog(s, latency_ms, now) for s in scored])

    async def predict(self, request: Request) -> Response:
        return await self._handle(request, "/predict", batch=False)

    async def predict_batch(self, request: Request) -> Response:
        return await self._handle(request, "/predict_batch", batch=True)

    async def metrics_text(self, _: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _api(request: Request) -> ScoringApi | None:
    return getattr(request.app.state, "api", None)


_STARTING = {"error": "service unavailable: still starting"}


async def _predict(request: Request) -> Response:
    api = _api(request)
    return await api.predict(request) if api else _json(_STARTING, 503, {"Retry-After": "1"})


async def _predict_batch(request: Request) -> Response:
    api = _api(request)
    return await api.predict_batch(request) if api else _json(_STARTING, 503, {"Retry-After": "1"})


async def _metrics(request: Request) -> Response:
    api = _api(request)
    return await api.metrics_text(request) if api else _json(_STARTING, 503)


async def _drain(request: Request) -> Response:
    api = _api(request)
    return await api.drain(request) if api else _json(_STARTING, 503)


class CloseWhileDraining:
    """ASGI middleware: once the service drains, each response carries ``Connection: close``.

    A Kubernetes Service balances connections, so a client's kept-alive connection stays on a
    terminating pod; when the server closes it as idle at SIGTERM, a request written at that
    instant gets no answer. Answering with ``Connection: close`` during the preStop period makes
    every active client close its connection after its answer and reconnect, to a ready pod.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        api = getattr(scope["app"].state, "api", None) if scope["type"] == "http" else None
        if api is None or not api.draining:
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)


async def _openapi(_: Request) -> Response:
    return _json(openapi_document())


def build_app() -> Starlette:
    """The routes exist from import (BentoML mounts apps at class definition); the service
    attaches its ScoringApi to ``app.state.api`` when it starts."""
    return Starlette(
        routes=[
            Route("/predict", _predict, methods=["POST"]),
            Route("/predict_batch", _predict_batch, methods=["POST"]),
            Route("/metrics", _metrics, methods=["GET"]),
            Route("/openapi.json", _openapi, methods=["GET"]),
            Route("/admin/drain", _drain, methods=["POST"]),
        ],
        middleware=[Middleware(CloseWhileDraining)],
    )
