"""The operations HTTP surface every non-BentoML service shares: /livez, /readyz, /metrics,
plus whatever routes the service adds. Runs uvicorn in a background thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

ReadinessCheck = Callable[[], tuple[bool, str]]


def ops_app(
    readiness: ReadinessCheck,
    extra_routes: Sequence[BaseRoute] = (),
    registry: CollectorRegistry = REGISTRY,
) -> Starlette:
    async def livez(_: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(_: Request) -> Response:
        ready, detail = readiness()
        return JSONResponse({"ready": ready, "detail": detail}, status_code=200 if ready else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    routes: list[BaseRoute] = [
        Route("/livez", livez),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        *extra_routes,
    ]
    return Starlette(routes=routes)


class OpsServer:
    """uvicorn serving an app from a daemon thread; stop() shuts it down gracefully."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        # Run off the main thread: uvicorn then leaves SIGTERM/SIGINT to the service's own handlers.
        self.thread = threading.Thread(target=self.server.run, name="ops-http", daemon=True)

    def start(self, timeout_s: float = 10.0) -> OpsServer:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("ops HTTP server failed to start (is the port taken?)")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
