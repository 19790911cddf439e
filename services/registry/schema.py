"""What the registry records about every model version (the model card's data)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ModelStage(StrEnum):
    CANDIDATE = "candidate"
    CHAMPION = "champion"
    ARCHIVED = "archived"


class Thresholds(BaseModel):
    """Score cut-offs: below ``review`` approve, from ``review`` review, from ``decline`` decline."""

    model_config = ConfigDict(frozen=True)

    review: float = Field(ge=0, le=1)
    decline: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.review > self.decline:
            raise ValueError(f"review threshold {self.review} is above decline threshold {self.decline}")
        return self

    def decide(self, probability: float) -> str:
        if probability >= self.decline:
            return "decline"
        if probability >= self.review:
            return "review"
        return "approve"


class DataWindow(BaseModel):
    start: datetime | None = None
    end: datetime | None = None
    rows: int = 0
    dataset_hash: str = ""  # content hash of the training snapshot
    dataset_uri: str = ""  # where that snapshot lives


class ModelVersion(BaseModel):
    """One registered model version; stored as model.json next to its artifact."""

    name: str
    version: str
    stage: ModelStage = ModelStage.CANDIDATE
    kind: str = Field(description="artifact flavour, e.g. 'sklearn' or 'torch'; tells the loader how to read it")
    created_at: datetime
    promoted_at: datetime | None = None
    features: list[str] = Field(description="ordered model input columns")
    feature_defaults: dict[str, float] = Field(default_factory=dict)
    thresholds: Thresholds
    metrics: dict[str, float] = Field(default_factory=dict)
    data_window: DataWindow = Field(default_factory=DataWindow)
    reference_stats: dict[str, Any] = Field(
        default_factory=dict, description="per-feature and score distributions for drift"
    )
    model_card: str = ""
    run_id: str = ""
    artifact_uri: str = ""  # filled in by the registry
    extra: dict[str, Any] = Field(default_factory=dict)
