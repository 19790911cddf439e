"""The one typed settings class every RTML service and command reads (env prefix ``RTML_``)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "RTML_"
# The feature service's stages (services/feature/stages.py), in pipeline order.
FEATURE_STAGES = ("user", "label", "merchant")


def stage_names(value: str) -> tuple[str, ...]:
    """The feature stages one process runs, from ``RTML_FEATURE_STAGES`` syntax ("user,label");
    raises ValueError naming what is wrong."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in FEATURE_STAGES]
    if unknown or not names:
        raise ValueError(f"expected a comma-separated subset of {', '.join(FEATURE_STAGES)}, got {value!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"a stage is named twice in {value!r}")
    return tuple(names)


REPO_ROOT = Path(__file__).resolve().parents[2]


class SettingsError(Exception):
    """Raised when an ``RTML_*`` variable is invalid; the message names the variable."""


class Settings(BaseSettings):
    """Configuration of the whole system; the Helm chart sets exactly these variables."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # --- the external contract ---
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma separated")
    data_dir: Path = Field(REPO_ROOT / "data", description="Local data directory (Parquet, SQLite, runs)")
    feast_repo: Path = Field(REPO_ROOT / "feature_repo", description="Feast repository directory")
    feast_store_yaml: str = Field(
        "feature_store.yaml",
        description="Feast store config inside the repo: feature_store.yaml (local) or feature_store.cluster.yaml",
    )
    model_registry_uri: str = Field(
        "", description="file:// or s3:// URI of the model registry; empty = <data_dir>/registry"
    )
    s3_endpoint: str = Field("", description="S3-compatible endpoint URL (MinIO in the cluster); empty = AWS default")
    api_token: SecretStr = Field(
        SecretStr(""), description="Bearer token required by the scoring API; empty disables auth"
    )
    kfp_host: str = Field("", description="Kubeflow Pipelines API URL; empty means the local kfp runner")
    feast_data_uri: str = Field(
        "", description="Where Feast keeps offline Parquet and its registry: a path or s3:// URI; empty = <data_dir>/feast"
    )
    training_image: str = Field(
        "rtml-training:latest", description="Container image the Kubeflow pipeline components run in"
    )
    redis_url: str = Field("127.0.0.1:6379", description="Feast Redis online store (cluster config), host:port[,db=N]")

    # --- Kafka behaviour ---
    topic_partitions: int = Field(3, ge=1, le=1024, description="Partitions per topic when RTML creates topics")
    topic_replication: int = Field(1, ge=1, le=16, description="Replication factor for created topics")
    kafka_max_poll_interval_ms: int = Field(
        5_000,
        ge=1_000,
        description="Also the group rebalance timeout kafka-python sends; keep small so joins are fast",
    )
    kafka_session_timeout_ms: int = Field(10_000, ge=1_000)
    kafka_fetch_max_wait_ms: int = Field(
        500,
        ge=0,
        le=30_000,
        description="Longest a consumer's fetch waits at the broker for data; Tansu answers a waiting fetch "
        "only when this expires, so on sparse topics it bounds delivery latency (Apache Kafka answers as soon "
        "as data arrives); lower costs idle CPU, every idle consumer fetching once per wait",
    )
    kafka_client_id: str = Field("rtml")

    # --- service ports and hosts ---
    bind_host: str = Field("127.0.0.1", description="Interface services listen on (0.0.0.0 in containers)")
    broker_port: int = Field(9092, ge=1, le=65535, description="Port of the embedded Tansu broker started by rtml up")
    feature_port: int = Field(8001, ge=1, le=65535)
    training_port: int = Field(8002, ge=1, le=65535)
    monitor_port: int = Field(8003, ge=1, le=65535)
    inference_port: int = Field(3000, ge=1, le=65535)

    # --- feature service ---
    feature_stages: str = Field(
        ",".join(FEATURE_STAGES),
        description="Comma-separated feature stages this process runs (user, label, merchant). Every stage must "
        "run somewhere: all in one process, or one process per stage so each has its own interpreter and core",
    )

    # --- inference ---
    inference_max_batch: int = Field(
        64, ge=1, le=1000, description="Most transactions scored in one feature read and model call; 1 disables batching"
    )
    inference_registry_poll_s: float = Field(
        10.0, gt=0, description="Seconds between checks of the registry's champion (fallback for missed model events)"
    )
    inference_log_buffer: int = Field(
        50_000, ge=100, description="Prediction logs held in memory while Kafka is unreachable; beyond it the oldest drop"
    )
    inference_keep_alive_s: int = Field(
        75,
        ge=1,
        description="Seconds an idle client connection stays open. Longer than clients' and proxies' own idle "
        "timeouts (httpx 5 s, ingress-nginx 60 s), so the client closes first and never reuses a connection "
        "the server is closing at that instant",
    )

    # --- monitor: drift and live-quality triggers (docs/monitoring.md explains the defaults) ---
    monitor_window: int = Field(2000, ge=50, description="Predictions per model version in the sliding drift window")
    monitor_min_samples: int = Field(1000, ge=10, description="Predictions in the window before drift may alarm")
    monitor_psi_threshold: float = Field(0.25, gt=0, description="PSI at or above which a monitored input drifted")
    monitor_drift_features: str = Field(
        "txn_amount_log,txn_has_device,txn_channel_web,txn_channel_pos,txn_channel_app,score",
        description="Comma-separated inputs whose PSI may trigger retraining ('score' = the model output); "
        "every feature's PSI is still measured and reported",
    )
    monitor_quality_window: int = Field(5000, ge=50, description="Labelled predictions per model version in the quality window")
    monitor_min_labels: int = Field(500, ge=10, description="Labelled predictions before quality may alarm")
    monitor_min_positives: int = Field(20, ge=1, description="Fraud labels in the window before quality may alarm")
    monitor_min_recall: float = Field(
        0.5, ge=0, le=1, description="Live recall (at the model's decision) below this alarms, whatever the version's test metrics"
    )
    monitor_min_pr_auc: float = Field(
        0.3, ge=0, le=1, description="Live PR-AUC below this alarms, whatever the version's test metrics"
    )
    monitor_min_pr_auc_ratio: float = Field(
        0.7,
        ge=0,
        le=1,
        description="Live PR-AUC below this share of the serving version's own test PR-AUC (registry metrics) "
        "alarms; 0 = absolute floor only",
    )
    monitor_min_recall_ratio: float = Field(
        0.7,
        ge=0,
        le=1,
        description="Live recall below this share of the serving version's test recall at 1 % false positives "
        "(registry metrics) alarms; 0 = absolute floor only",
    )
    monitor_cooldown_s: float = Field(1800.0, ge=0, description="Seconds before the same model version may be reported again")
    monitor_label_ttl_h: float = Field(264.0, gt=0, description="Event-time hours a prediction waits for its label")
    monitor_max_pending: int = Field(200_000, ge=100, description="Predictions (and early labels) held for the label join")

    # --- training service (docs/training.md "Training service") ---
    training_cooldown_s: float = Field(
        1800.0, ge=0, description="Seconds after a run was accepted before another rtml.training-requests request may start one"
    )
    training_window_hours: float = Field(
        0.0, ge=0, description="Train on labelled transactions of the newest N hours of event time; 0 = everything logged"
    )
    training_min_rows: int = Field(1000, ge=1, description="Pipeline min_rows: labelled rows a run needs")
    training_mlp_max_epochs: int = Field(30, ge=1, description="Pipeline mlp_max_epochs (early stopping may end sooner)")
    training_margin: float = Field(0.005, ge=0, description="Pipeline margin: PR-AUC a challenger must gain")
    training_experiment: str = Field("rtml", min_length=1, description="Kubeflow experiment runs are submitted to")
    training_snapshot_uri: str = Field(
        "", description="Where run data snapshots go in cluster mode; empty = training-snapshots beside the registry"
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_has_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {server.strip()!r}")
        return value

    @field_validator("model_registry_uri", "s3_endpoint", "kfp_host")
    @classmethod
    def _uri_scheme(cls, value: str, info: object) -> str:
        if not value:
            return value
        name = getattr(info, "field_name", "")
        allowed = ("file://", "s3://") if name == "model_registry_uri" else ("http://", "https://")
        if not value.startswith(allowed):
            raise ValueError(f"must start with one of {', '.join(allowed)}")
        return value

    @field_validator("feature_stages")
    @classmethod
    def _known_stages(cls, value: str) -> str:
        return ",".join(stage_names(value))

    @property
    def feature_stage_names(self) -> tuple[str, ...]:
        return tuple(self.feature_stages.split(","))

    @property
    def bootstrap_servers(self) -> list[str]:
        return [s.strip() for s in self.kafka_bootstrap.split(",") if s.strip()]

    @property
    def registry_uri(self) -> str:
        return self.model_registry_uri or (self.data_dir / "registry").resolve().as_uri()

    @property
    def feast_store_path(self) -> Path:
        return self.feast_repo / self.feast_store_yaml


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise SettingsError naming the bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        raise SettingsError(f"invalid setting {ENV_PREFIX}{field.upper()}: {first['msg']}") from None


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``RTML_*`` variables that reproduce ``settings`` in a child process."""
    env = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"{ENV_PREFIX}{name.upper()}"] = str(value)
    return env


def child_env(settings: Settings | None = None) -> dict[str, str]:
    """The environment for a child process: this one's without any ``RTML_*`` variable (so nothing
    leaks in from the caller's shell), plus those that reproduce ``settings`` when given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    if settings is not None:
        env.update(settings_env(settings))
    return env


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once at start-up."""
    return load_settings()
