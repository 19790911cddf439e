"""Pipeline parameters of a run: defaults from settings, overrides from POST /runs, checked strictly."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.common.settings import Settings


class ParameterError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class PipelineOverrides(BaseModel):
    """What a caller may change for one run; everything else comes from the service's settings."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    window_start: str | None = None
    window_end: str | None = None
    backfill_features: bool | None = None
    seed: int | None = Field(None, ge=0)
    margin: float | None = Field(None, ge=0)
    latency_budget_ms: float | None = Field(None, gt=0)
    min_rows: int | None = Field(None, ge=1)
    max_null_rate: float | None = Field(None, ge=0, le=1)
    mlp_max_epochs: int | None = Field(None, ge=1, le=1000)

    @field_validator("window_start", "window_end")
    @classmethod
    def _iso_time(cls, value: str | None) -> str | None:
        if value:
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"expected an ISO time such as 2026-11-01T00:00:00Z, got {value!r}") from None
            if parsed.tzinfo is None:
                raise ValueError("needs a time zone, e.g. 2026-11-01T00:00:00Z")
        return value


class RunRequestBody(BaseModel):
    """The JSON body of POST /runs."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    reason: Literal["drift", "quality", "schedule", "manual"] = "manual"
    request_id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    requested_by: str = Field("api", min_length=1, max_length=128)
    parameters: PipelineOverrides = Field(default_factory=PipelineOverrides)


def parse_body(payload: Any) -> RunRequestBody:
    """Validate a POST /runs body; ParameterError names the first offending field."""
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ParameterError("<body>", f"expected a JSON object, got {type(payload).__name__}")
    try:
        return RunRequestBody.model_validate(payload)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise ParameterError(".".join(str(p) for p in err["loc"]) or "<body>", err["msg"]) from None


def pipeline_arguments(settings: Settings, overrides: dict[str, Any]) -> dict[str, Any]:
    """Every pipeline parameter the service controls (data paths are added once the snapshot exists)."""
    arguments: dict[str, Any] = {
        "window_start": "",
        "window_end": "",
        "backfill_features": True,
        "seed": 7,
        "margin": settings.training_margin,
        "latency_budget_ms": 10.0,
        "min_rows": settings.training_min_rows,
        "max_null_rate": 0.5,
        "mlp_max_epochs": settings.training_mlp_max_epochs,
    }
    arguments.update({k: v for k, v in overrides.items() if v is not None and k in arguments})
    return arguments
