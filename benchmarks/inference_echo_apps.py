"""The two floors the inference benchmark compares against: a bare Starlette echo and a
default BentoML echo (``bentoml serve benchmarks.inference_echo_apps:DefaultEcho``)."""

from __future__ import annotations

from typing import Any

import bentoml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def _echo(request: Request) -> Response:
    return JSONResponse(await request.json())


bare_starlette = Starlette(routes=[Route("/predict", _echo, methods=["POST"])])


@bentoml.service(workers=1)
class DefaultEcho:
    """BentoML with its defaults: typed API, schema work, middleware, tracing, access logs."""

    @bentoml.api
    def predict(
        self,
        transaction_id: str,
        user_id: str,
        merchant_id: str,
        amount: float,
        currency: str,
        country: str,
        channel: str,
        timestamp: str,
        schema_version: int = 1,
        device_id: str | None = None,
    ) -> dict[str, Any]:
        return {"transaction_id": transaction_id, "user_id": user_id, "amount": amount}
