"""Batch scoring: a Parquet table of transactions scored with point-in-time features from the offline store."""

from services.batch.scoring import BatchInputError, BatchResult, score_file

__all__ = ["BatchInputError", "BatchResult", "score_file"]
