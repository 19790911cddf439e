"""Bearer-token check of the scoring endpoints (shared with the other services' admin routes)."""

from services.common.auth import BearerAuth, unauthorized

__all__ = ["BearerAuth", "unauthorized"]
