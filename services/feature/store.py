"""Opening and applying the Feast store from RTML settings; training and inference reuse it."""

from __future__ import annotations

import logging
import os
import string
from pathlib import Path

import yaml
from feast import FeatureStore, RepoConfig

from services.common.settings import Settings
from services.feature.offline import OfflineTable
from services.features.definitions import FraudRepo, build_repo

log = logging.getLogger(__name__)


class StoreConfigError(ValueError):
    """The Feast store yaml is missing or names a variable RTML does not provide."""


def feast_data_uri(settings: Settings) -> str:
    """Where offline Parquet and the registry live (a local path or an s3:// URI)."""
    if settings.feast_data_uri:
        return settings.feast_data_uri.rstrip("/")
    return str((settings.data_dir / "feast").resolve())


def _variables(settings: Settings) -> dict[str, str]:
    return {
        "RTML_DATA_DIR": str(settings.data_dir.resolve()),
        "RTML_FEAST_DATA_URI": feast_data_uri(settings),
        "RTML_REDIS_URL": settings.redis_url,
        "RTML_S3_ENDPOINT": settings.s3_endpoint,
    }


def repo_config(settings: Settings) -> RepoConfig:
    """The store config from the chosen yaml, with ${RTML_*} filled from ``settings``."""
    path = settings.feast_store_path
    if not path.is_file():
        raise StoreConfigError(f"Feast store config {path} does not exist (RTML_FEAST_STORE_YAML)")
    try:
        text = string.Template(path.read_text()).substitute(_variables(settings))
    except KeyError as exc:
        raise StoreConfigError(f"{path} uses ${{{exc.args[0]}}}, which RTML does not provide") from None
    raw = yaml.safe_load(text)
    config = RepoConfig(**raw)
    config.repo_path = settings.feast_repo.resolve()
    return config


def fraud_repo(settings: Settings) -> FraudRepo:
    return build_repo(feast_data_uri(settings), settings.s3_endpoint or None)


def open_store(settings: Settings) -> FeatureStore:
    """A FeatureStore on the configured online/offline stores (apply_repo must have run once)."""
    if settings.s3_endpoint:
        # Feast's S3 registry store reads its endpoint from this variable only.
        os.environ.setdefault("FEAST_S3_ENDPOINT_URL", settings.s3_endpoint)
    data_uri = feast_data_uri(settings)
    if "://" not in data_uri:
        Path(data_uri).mkdir(parents=True, exist_ok=True)
        (settings.data_dir / "feast").mkdir(parents=True, exist_ok=True)
    return FeatureStore(repo_path=str(settings.feast_repo.resolve()), config=repo_config(settings))


def _ensure_offline_tables(settings: Settings, repo: FraudRepo) -> None:
    """Each view's offline table is a directory of part files; readers need it to exist with one
    (empty) part carrying the schema before the first write."""
    for view, fv in repo.views.items():
        if OfflineTable.of(fv, settings.s3_endpoint, repo.join_keys[view]).ensure():
            log.info("created offline table", extra={"view": view})


def apply_repo(settings: Settings) -> None:
    """Idempotent ``feast apply``: register every object and create the offline tables."""
    repo = fraud_repo(settings)
    store = open_store(settings)
    _ensure_offline_tables(settings, repo)
    store.apply(repo.objects())
    log.info("feature repo applied", extra={"project": store.project, "views": sorted(repo.views)})
