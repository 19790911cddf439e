"""Bearer-token check for every endpoint that scores or changes state (probes and metrics stay open)."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

_SCHEME = "bearer "


class BearerAuth:
    """Accepts ``Authorization: Bearer <token>``; an empty configured token disables the check."""

    def __init__(self, token: SecretStr) -> None:
        self._expected = token.get_secret_value().encode("utf-8")

    @property
    def enabled(self) -> bool:
        return bool(self._expected)

    def allows(self, authorization: str | None) -> bool:
        if not self._expected:
            return True
        if not authorization or authorization[: len(_SCHEME)].lower() != _SCHEME:
            return False
        # Constant time, so response timing reveals nothing about how much of a guess matched.
        return hmac.compare_digest(authorization[len(_SCHEME) :].strip().encode("utf-8"), self._expected)


def unauthorized() -> JSONResponse:
    """The refusal every RTML endpoint answers for a missing or wrong token."""
    return JSONResponse(
        {"error": "Authorization: a valid bearer token is required", "field": "Authorization"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def require_bearer(auth: BearerAuth, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """Wrap a (sync) Starlette handler so it runs only for a request carrying the token."""

    def guarded(request: Request) -> Response:
        if not auth.allows(request.headers.get("authorization")):
            return unauthorized()
        return handler(request)

    return guarded
