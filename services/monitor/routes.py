"""The monitor's own HTTP routes, next to the shared /livez, /readyz and /metrics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from services.common.auth import BearerAuth, require_bearer
from services.monitor.report import SnapshotPaths, render_html, render_png
from services.monitor.state import MonitorState


def monitor_routes(
    state: MonitorState, snapshot: Callable[[], SnapshotPaths], auth: BearerAuth | None = None
) -> list[BaseRoute]:
    """Reads are open; writing a report snapshot changes state, so it needs RTML_API_TOKEN when set."""
    # Plain (sync) handlers: Starlette runs them in its thread pool, so drawing never blocks the event loop.
    def api_state(_: Request) -> Response:
        return JSONResponse(state.snapshot())

    def report(_: Request) -> Response:
        data = state.report_data()
        return HTMLResponse(render_html(data, render_png(data)))

    def report_snapshot(_: Request) -> Response:
        paths = snapshot()
        return JSONResponse({"html": str(Path(paths.html)), "png": str(Path(paths.png))})

    return [
        Route("/api/state", api_state, methods=["GET"]),
        Route("/report", report, methods=["GET"]),
        Route(
            "/report/snapshot",
            require_bearer(auth, report_snapshot) if auth is not None else report_snapshot,
            methods=["POST"],
        ),
    ]
