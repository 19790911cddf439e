"""The training join (``pipelines/point_in_time.py``, pandas.merge_asof) against Feast's own
``get_historical_features`` on the same real local store.

Why: training does not use Feast's point-in-time join (the file offline store took 427 s on 27k
rows and drops entity rows, docs/training.md) but claims Feast's semantics: per view, the newest
row with event time <= lookup, a later ``created_timestamp`` superseding an earlier write of the
same (key, event time), no expiry, lookup = transaction time - 1 µs. Nothing else checks that
claim against Feast itself, so this builds one store through the project's writer (a row revised
in a later write, lookups exactly at, just before, between, before the first and after the last
row of each key, keys with no rows in a view) and compares cell by cell.

Findings pinned here (Feast 0.67 dask/file offline store, on the project's part-file layout):

* Documented drop, made precise: Feast loses an entity row when some view holds rows for its key
  but none at or before the lookup; a key with no rows at all in a view is kept, with nulls.
  merge_asof keeps every row, with nulls for that view.
* Feast's choice between two writes of the same (key, event time) is arbitrary: it sorts by
  created_timestamp, then by event time, in two separate dask shuffles that do not keep the
  first order, so with more than one part file (a revision is always a later part) it returns
  the superseded value in some runs and the revision in others. merge_asof always takes the
  revision (asserted in test_join_point_in_time_takes_the_newest_row_before_the_transaction;
  on Feast's side only that the cell is one of the written versions, since either comes back).
* Feast keeps one entity row per (user_id, lookup): it de-duplicates on the join keys seen so far
  after each view, and after the first view that is user_id alone, so rows of the same user at
  the same time with different merchants (or identical rows) collapse into one
  (``test_feast_keeps_rows_sharing_user_and_time``, xfail).
* Not asserted, worked around: Feast raises NotImplementedError ("Divisions calculation failed
  for non-numeric column 'created_timestamp'") when, after its left merge of the entity rows with
  a view (hash-partitioned by key, one partition per part file), some partition holds only keys
  with no rows in that view (all created_timestamp null). Small data hits it easily: here m-4 has
  a merchant_risk row for that reason (with m-4 absent from merchant_risk, Feast crashed). The
  same crash came once more in a full suite run on these writes (2026-12-07; never in isolation):
  the fixture then builds a fresh store, up to three times, and warns.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines.dataset import point_in_time_features
from pipelines.point_in_time import join_point_in_time
from services.common.settings import Settings, load_settings
from services.feature.store import apply_repo, open_store
from services.feature.writer import FeatureWriter
from services.features import names as n
from services.features.aggregate import Row, to_us

# Feast's dask sort warns about pandas' fillna downcasting on every call; not this test's concern.
pytestmark = pytest.mark.filterwarnings("ignore:Downcasting object dtype arrays:FutureWarning")

T0 = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
USERS = ("u-1", "u-2", "u-3", "u-4")  # u-4: no user_activity rows
MERCHANTS = ("m-1", "m-2", "m-3", "m-4")  # m-3: no merchant_risk rows; m-4: no merchant_activity rows
# The other side of every probe: a key with a row long before, so a probe is dropped only for its own key.
BACKGROUND_USER, BACKGROUND_MERCHANT = "u-0", "m-0"
VIEWS = tuple(n.VIEW_FEATURES)

# Event times (minutes after T0) of each key's rows, per write (batch) and view. Batch 1 is the
# first micro-batch; batch 2 revises two rows (same key and event time, later created_timestamp);
# batch 3 writes a new, later event. Row times differ between keys, so probes never coincide.
# The keys are chosen so Feast does not crash (module docstring, last point): keep m-4's risk row.
ROWS: dict[int, dict[str, dict[str, tuple[float, ...]]]] = {
    1: {
        n.USER_VIEW: {BACKGROUND_USER: (-60,), "u-1": (0, 10, 20), "u-2": (5, 30)},
        n.MERCHANT_VIEW: {BACKGROUND_MERCHANT: (-60,), "m-1": (0, 15, 35), "m-2": (8, 40), "m-3": (12,)},
        n.MERCHANT_RISK_VIEW: {BACKGROUND_MERCHANT: (-60,), "m-1": (2, 33), "m-2": (4,), "m-4": (22,)},
    },
    2: {n.USER_VIEW: {"u-1": (20,)}, n.MERCHANT_VIEW: {"m-2": (8,)}},
    3: {n.USER_VIEW: {"u-3": (50,)}},
}
COLLISION_MINUTE = 60.0  # three transactions of u-2 at the same instant (two merchants, one repeated)


def _at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


@dataclass(frozen=True)
class Write:
    """One stored row as written, with the batch (write order) that stands for its created_timestamp."""

    view: str
    key: str
    at: datetime
    batch: int
    values: dict[str, Any]


def _values(view: str, tag: int, nan_std: bool) -> dict[str, Any]:
    """Distinct values per write (``tag``), so every cell tells which row it came from."""
    if view == n.USER_VIEW:
        values: dict[str, Any] = {
            **dict.fromkeys(n.USER_INT_FEATURES, tag),
            **dict.fromkeys(n.USER_FLOAT_FEATURES, tag + 0.25),
            n.USER_COUNTRIES_30D: ["DE", f"C{tag}"],
            n.USER_DEVICES_30D: [f"d-{tag}"],
        }
        if nan_std:  # a single-transaction history: no standard deviation, no device yet
            values[n.USER_AMOUNT_STD_24H] = float("nan")
            values[n.USER_DEVICES_30D] = []
        return values
    if view == n.MERCHANT_VIEW:
        return {n.MERCHANT_TXN_COUNT_24H: tag, n.MERCHANT_AMOUNT_MEAN_24H: tag + 0.5}
    return {n.MERCHANT_FRAUD_RATE_30D: tag / 1000, n.MERCHANT_LABELLED_COUNT_30D: tag}


def _writes() -> list[Write]:
    tags = itertools.count(1)
    return [
        Write(view, key, _at(minute), batch, _values(view, next(tags), (view, key, minute) == (n.USER_VIEW, "u-2", 5)))
        for batch, views in ROWS.items()
        for view, keys in views.items()
        for key, minutes in keys.items()
        for minute in minutes
    ]


def _transactions(writes: list[Write]) -> pd.DataFrame:
    """Probes of every key: a transaction at each of its row times (lookup just before the row),
    1 µs after (lookup exactly at the row), before its first row, between rows, after its last;
    paired with the background key of the other entity. Then one same-instant collision."""

    def probes(key: str, others: tuple[float, ...]) -> list[datetime]:
        at_rows = {w.at + d for w in writes if w.key == key for d in (timedelta(0), US)}
        return sorted(at_rows | {_at(m) for m in others})

    txns = [(user, BACKGROUND_MERCHANT, t) for user in USERS for t in probes(user, (-5, 25, 70))]
    txns += [
        (BACKGROUND_USER, merchant, t)
        for i, merchant in enumerate(MERCHANTS)
        for t in probes(merchant, (-3 - i, 27 + i / 10, 65 + i))
    ]
    collision = _at(COLLISION_MINUTE)
    assert len({(u, t) for u, _, t in txns}) == len(txns) and all(t != collision for _, _, t in txns)
    txns += [("u-2", "m-1", collision), ("u-2", "m-2", collision), ("u-2", "m-1", collision)]
    return pd.DataFrame(
        {
            "transaction_id": [f"t-{i:03d}" for i in range(len(txns))],
            n.USER_JOIN_KEY: [u for u, _, _ in txns],
            n.MERCHANT_JOIN_KEY: [m for _, m, _ in txns],
            "timestamp": pd.to_datetime([t for _, _, t in txns], utc=True),
        }
    )


def _write(settings: Settings, writes: list[Write]) -> None:
    """Through the feature service's own writer, one micro-batch per batch (its own created_timestamp)."""
    writer = FeatureWriter(open_store(settings))
    for batch in sorted({w.batch for w in writes}):
        rows: dict[str, list[Row]] = {}
        for w in writes:
            if w.batch == batch:
                key = n.VIEW_JOIN_KEY[w.view]
                rows.setdefault(w.view, []).append({key: w.key, n.EVENT_TIMESTAMP: to_us(w.at), **w.values})
        writer.write(rows, [], revisions=lambda view, key: 0)


@dataclass(frozen=True)
class Scenario:
    writes: list[Write]
    transactions: pd.DataFrame  # transaction_id, user_id, merchant_id, timestamp
    merge_asof: pd.DataFrame  # join_point_in_time, indexed by transaction_id
    pipeline: pd.DataFrame  # point_in_time_features (the pipeline's own lookup), indexed by transaction_id
    feast: pd.DataFrame  # get_historical_features, indexed by transaction_id

    def key(self, txn: pd.Series, view: str) -> str:
        return str(txn[n.VIEW_JOIN_KEY[view]])

    def expected(self, view: str, key: str, txn_time: datetime) -> Write | None:
        """The row a scorer at ``txn_time`` saw: newest event strictly before it, latest write wins."""
        seen = [w for w in self.writes if w.view == view and w.key == key and w.at < txn_time]
        return max(seen, key=lambda w: (w.at, w.batch), default=None)

    def versions(self, write: Write) -> list[Write]:
        """Every write of ``write``'s (view, key, event time)."""
        return [w for w in self.writes if (w.view, w.key, w.at) == (write.view, write.key, write.at)]

    def documented_drop(self, txn: pd.Series) -> list[str]:
        """Views holding rows for the transaction's key but none at or before its lookup."""
        return [
            view
            for view in VIEWS
            if any(w.view == view and w.key == self.key(txn, view) for w in self.writes)
            and self.expected(view, self.key(txn, view), txn["timestamp"]) is None
        ]

    def collision_ids(self) -> list[str]:
        rows = self.transactions
        return rows.loc[rows["timestamp"] == pd.Timestamp(_at(COLLISION_MINUTE)), "transaction_id"].tolist()


# Builds of the scenario before giving up on Feast's divisions crash (module docstring).
FEAST_ATTEMPTS = 3


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    for attempt in range(1, FEAST_ATTEMPTS + 1):
        try:
            return _build_scenario(tmp_path_factory.mktemp("pit-vs-feast") / "data")
        except NotImplementedError as exc:
            # Feast's dask sort on created_timestamp, documented above; once in a full suite run
            # (2026-12-07, never in 36 runs of this module alone) it crashed on these same writes.
            # A fresh store (new write times) is built; the assertions are unchanged.
            if "Divisions calculation failed" not in str(exc) or attempt == FEAST_ATTEMPTS:
                raise
            warnings.warn(f"Feast's historical retrieval crashed (attempt {attempt}): {exc}", stacklevel=1)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _build_scenario(data_dir: Path) -> Scenario:
    settings = load_settings(data_dir=data_dir)
    apply_repo(settings)
    writes = _writes()
    _write(settings, writes)
    txns = _transactions(writes)
    store = open_store(settings)
    lookup = txns["timestamp"] - n.POINT_IN_TIME_OFFSET  # as pipelines/dataset.point_in_time_features
    entities = txns[["transaction_id", n.USER_JOIN_KEY, n.MERCHANT_JOIN_KEY]]
    merged = join_point_in_time(store, entities, lookup)
    pipeline = point_in_time_features(settings, txns)
    feast = store.get_historical_features(
        entity_df=entities.assign(event_timestamp=lookup),
        features=store.get_feature_service(n.FEATURE_SERVICE),
    ).to_df()
    return Scenario(
        writes=writes,
        transactions=txns,
        merge_asof=merged.set_index("transaction_id"),
        pipeline=pipeline.set_index("transaction_id"),
        feast=feast.set_index("transaction_id"),
    )


def _is_list(value: Any) -> bool:
    return isinstance(value, list | tuple | np.ndarray)


def _same(a: Any, b: Any) -> bool:
    """Equal values (an int stored as float where nulls forced float64 is equal), or null on both sides."""
    if _is_list(a) or _is_list(b):
        return _is_list(a) and _is_list(b) and list(a) == list(b)
    if pd.isna(a) or pd.isna(b):
        return bool(pd.isna(a) and pd.isna(b))
    return bool(a == b)


def _cells(frame: pd.DataFrame, txn_id: str, features: tuple[str, ...]) -> dict[str, Any]:
    return {f: frame.at[txn_id, f] for f in features}


def test_the_scenario_covers_every_case(scenario: Scenario) -> None:
    """Among the rows Feast should return (no documented drop, no collision): lookups exactly at a
    row, revised rows of two views, keys with no rows in a view; and drops caused by every view."""
    txns = scenario.transactions
    assert len(txns) < 100
    drops = {t.transaction_id: scenario.documented_drop(t) for _, t in txns.iterrows()}
    assert {view for views in drops.values() for view in views} == set(VIEWS)
    kept_ids = {i for i, views in drops.items() if not views} - set(scenario.collision_ids())
    kept = txns[txns["transaction_id"].isin(kept_ids)]
    exactly_at = {w.at + US for w in scenario.writes}
    assert kept["timestamp"].isin(exactly_at).sum() >= 5
    revised_views = {
        view
        for _, t in kept.iterrows()
        for view in VIEWS
        if (w := scenario.expected(view, scenario.key(t, view), t["timestamp"])) and len(scenario.versions(w)) > 1
    }
    assert revised_views == {n.USER_VIEW, n.MERCHANT_VIEW}
    assert {"u-4", "m-3", "m-4"} <= set(kept[n.USER_JOIN_KEY]) | set(kept[n.MERCHANT_JOIN_KEY])


def test_join_point_in_time_takes_the_newest_row_before_the_transaction(scenario: Scenario) -> None:
    """merge_asof: newest row at or before transaction time - 1 µs, latest write of a revised row,
    nulls for a view with nothing before; every transaction kept, as the pipeline computes it."""
    wrong = []
    for _, txn in scenario.transactions.iterrows():
        for view, features in n.VIEW_FEATURES.items():
            row = scenario.expected(view, scenario.key(txn, view), txn["timestamp"])
            want = row.values if row else dict.fromkeys(features)
            got = _cells(scenario.merge_asof, txn.transaction_id, features)
            wrong += [(txn.transaction_id, f, got[f], want[f]) for f in features if not _same(got[f], want[f])]
    assert wrong == []
    assert list(scenario.pipeline.index) == list(scenario.merge_asof.index)
    differs = [
        (i, f)
        for i in scenario.pipeline.index
        for f in n.STORED_FEATURES
        if not _same(scenario.pipeline.at[i, f], scenario.merge_asof.at[i, f])
    ]
    assert differs == []


def test_feast_returns_the_same_values(scenario: Scenario) -> None:
    """Every cell of every row Feast returned equals merge_asof's. Where the row is a revised one,
    Feast's pick between the versions is arbitrary (module docstring): there the cell must be one
    of the written versions (merge_asof's correct pick is asserted in the test above)."""
    wrong = []
    for txn_id in scenario.feast.index:
        txn = scenario.transactions.set_index("transaction_id").loc[txn_id]
        for view, features in n.VIEW_FEATURES.items():
            row = scenario.expected(view, str(txn[n.VIEW_JOIN_KEY[view]]), txn["timestamp"])
            got = _cells(scenario.feast, txn_id, features)
            if row is not None and len(scenario.versions(row)) > 1:
                allowed = [v.values for v in scenario.versions(row)]
                if not any(all(_same(got[f], version[f]) for f in features) for version in allowed):
                    wrong.append((txn_id, view, got, "none of the written versions"))
                continue
            want = _cells(scenario.merge_asof, txn_id, features)
            wrong += [(txn_id, f, got[f], want[f]) for f in features if not _same(got[f], want[f])]
    assert wrong == []


def test_feast_drops_only_rows_with_nothing_before_them_in_some_view(scenario: Scenario) -> None:
    """Outside the (user, time) collision, the rows Feast leaves out are exactly those whose key has
    rows in some view but none at or before the lookup; merge_asof returns them, nulls for that view."""
    collision = set(scenario.collision_ids())
    txns = scenario.transactions[~scenario.transactions["transaction_id"].isin(collision)]
    dropped = {t.transaction_id: scenario.documented_drop(t) for _, t in txns.iterrows() if scenario.documented_drop(t)}
    returned = set(scenario.feast.index) - collision
    assert set(txns["transaction_id"]) - returned == set(dropped)
    assert returned <= set(txns["transaction_id"])
    assert set(scenario.merge_asof.index) == set(scenario.transactions["transaction_id"])
    for txn_id, views in dropped.items():
        for view in views:
            assert scenario.merge_asof.loc[txn_id, list(n.VIEW_FEATURES[view])].isna().all(), (txn_id, view)


@pytest.mark.xfail(
    reason="Feast 0.67 dask store de-duplicates on (user_id, event_timestamp) after the first view, "
    "so transactions of one user at the same instant collapse into one row",
    raises=AssertionError,
    strict=True,
)
def test_feast_keeps_rows_sharing_user_and_time(scenario: Scenario) -> None:
    collision = scenario.collision_ids()
    assert len(collision) == 3
    assert not any(
        scenario.documented_drop(t) for _, t in scenario.transactions.iterrows() if t.transaction_id in collision
    )
    assert set(collision) <= set(scenario.feast.index)
