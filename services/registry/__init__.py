"""The model registry: versions, stages (candidate, champion, archived) and artifacts behind one URI."""

from services.registry.registry import ModelRegistry, RegistryError
from services.registry.schema import ModelStage, ModelVersion, Thresholds

__all__ = ["ModelRegistry", "ModelStage", "ModelVersion", "RegistryError", "Thresholds"]
