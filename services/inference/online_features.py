"""Reading a batch of transactions' stored features from the Feast online store in one call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from services.common.events import Transaction
from services.features import names as n

if TYPE_CHECKING:  # annotations only; Feast loads with the store (``open_store``), in the scoring worker
    from feast import FeatureService, FeatureStore

StoredRow = dict[str, Any]


class FeatureStoreUnavailable(RuntimeError):
    """The online store could not be read; the request cannot be scored honestly."""


def fail_fast(store: FeatureStore) -> None:
    """Make a Redis online store fail in milliseconds when Redis is away.

    redis-py retries a refused connection with exponential backoff for about 10 s by
    default; every request queued behind that read (one scoring thread) would wait too,
    and the readiness probe would hang. One immediate retry still covers the stale pooled
    connection left by a Redis restart. Feast exposes no setting for this, hence its
    store's client is reached directly.
    """
    from feast.infra.online_stores.redis import RedisOnlineStore
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    online = store._get_provider().online_store  # type: ignore[attr-defined]
    if isinstance(online, RedisOnlineStore):
        online._get_client(store.config.online_store).set_retry(Retry(NoBackoff(), 1))


class OnlineFeatureReader:
    """Online lookups through the ``fraud_scoring`` FeatureService (what the model was trained on)."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        self._service: FeatureService | None = None
        fail_fast(store)

    def _feature_service(self) -> FeatureService:
        if self._service is None:
            self._service = self.store.get_feature_service(n.FEATURE_SERVICE)
        return self._service

    def read(self, transactions: Sequence[Transaction]) -> list[StoredRow]:
        """One row of stored features per transaction (None where the store has no value)."""
        return self.read_entities([(t.user_id, t.merchant_id) for t in transactions])

    def read_entities(self, keys: Sequence[tuple[str, str]]) -> list[StoredRow]:
        """Stored features per (user_id, merchant_id) pair."""
        if not keys:
            return []
        entity_rows = [{n.USER_JOIN_KEY: user, n.MERCHANT_JOIN_KEY: merchant} for user, merchant in keys]
        try:
            columns = self.store.get_online_features(
                features=self._feature_service(), entity_rows=entity_rows
            ).to_dict()
        except Exception as exc:
            raise FeatureStoreUnavailable(f"online feature read failed: {type(exc).__name__}: {exc}") from exc
        names = [c for c in columns if c not in (n.USER_JOIN_KEY, n.MERCHANT_JOIN_KEY)]
        return [{name: columns[name][i] for name in names} for i in range(len(keys))]

    def probe(self) -> None:
        """Raise FeatureStoreUnavailable unless the store answers a lookup (for readiness)."""
        self.read_entities([("readiness-probe", "readiness-probe")])
