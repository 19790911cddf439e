"""The training service's HTTP routes beside /livez, /readyz and /metrics: list, show and start runs."""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from services.common.auth import BearerAuth, unauthorized
from services.training.parameters import ParameterError, RunRequestBody, parse_body
from services.training.store import RunRecord, RunStore

MAX_BODY_BYTES = 16 * 1024

# Starts a run for a validated body; returns (HTTP status, the run or None, a message).
StartRun = Callable[[RunRequestBody], tuple[int, RunRecord | None, str]]


def _error(status: int, field: str, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status)


def training_routes(runs: RunStore, start_run: StartRun, auth: BearerAuth) -> list[BaseRoute]:
    """Reads are open; starting a run changes state, so it needs RTML_API_TOKEN when set."""

    def list_runs(_: Request) -> Response:
        return JSONResponse({"runs": [r.public() for r in runs.all()]})

    def show_run(request: Request) -> Response:
        record = runs.get(str(request.path_params["run_id"]))
        if record is None:
            return _error(404, "run_id", f"no run {request.path_params['run_id']!r}")
        return JSONResponse(record.public())

    async def post_run(request: Request) -> Response:
        if not auth.allows(request.headers.get("authorization")):
            return unauthorized()
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return _error(413, "<body>", f"body of {len(raw)} bytes exceeds {MAX_BODY_BYTES}")
        try:
            payload = json.loads(raw) if raw.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _error(400, "<body>", f"not valid JSON: {exc}")
        try:
            body = parse_body(payload)
        except ParameterError as exc:
            return _error(422, exc.field, str(exc))
        status, record, message = start_run(body)
        if record is None:
            return _error(status, "request_id" if status == 409 and body.request_id else "<run>", message)
        return JSONResponse({**record.public(), "message": message}, status_code=status)

    return [
        Route("/runs", list_runs, methods=["GET"]),
        Route("/runs", post_run, methods=["POST"]),
        Route("/runs/{run_id}", show_run, methods=["GET"]),
    ]
