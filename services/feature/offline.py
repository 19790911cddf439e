"""A view's offline table: a directory of immutable Parquet part files, one per write.

Feast's file offline store appends by reading the whole table, concatenating and rewriting
it, so every micro-batch cost grows with the run; it also rewrites with Arrow's "compliant"
list naming (``list<element: ...>``), which its own reader cannot map back (KeyError in
pa_to_feast_value_type), so Array(String) views break after one write. Here the view's
source path (``offline/<view>.parquet``) is a directory, as Spark and Hive lay out a table;
each write adds one part file with the legacy list naming, written aside and renamed (a killed
process never leaves a torn part) — on S3 an object appears whole or not at all. Feast (dask),
pandas and pyarrow read the directory as one table; files starting with ``.`` or ``_`` are
skipped by all of them, which hides parts still being written.

``ParquetPartsOfflineStore`` is Feast's file offline store with this write path, so
``store.push(..., to=PushMode.OFFLINE)`` appends a part too (``offline_store.type`` in
``feature_repo/feature_store*.yaml``).

Replays and revisions add rows with an already-stored (key, event time); readers keep the
one with the newest ``created_timestamp`` (Feast's and pipelines/point_in_time.py's rule), and a
replayed row carries the same values, so duplicates never change what is read back.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from feast import FeatureView, FileSource
from feast.infra.offline_stores.dask import DaskOfflineStore, DaskOfflineStoreConfig
from feast.repo_config import RepoConfig
from feast.types import from_feast_to_pyarrow_type
from pyarrow import fs as pafs

from services.features import names as n

STORE_TYPE = "services.feature.offline.ParquetPartsOfflineStore"


def offline_schema(view: FeatureView, join_key: str | None = None) -> pa.Schema:
    """The Parquet schema of a view's offline rows (join keys, features, both timestamps);
    ``join_key`` (a string key) for a view not applied yet, whose entity columns are unknown."""
    fields = [pa.field(col.name, from_feast_to_pyarrow_type(col.dtype)) for col in view.entity_columns]
    if not fields:
        assert join_key is not None, f"{view.name}: entity columns unknown before apply; pass join_key"
        fields = [pa.field(join_key, pa.string())]
    for feature in view.features:
        arrow_type = from_feast_to_pyarrow_type(feature.dtype)
        if pa.types.is_list(arrow_type):
            # Feast's reader maps "list<item: ...>" only, not arrow's "element" naming.
            arrow_type = pa.list_(arrow_type.value_type)
        fields.append(pa.field(feature.name, arrow_type))
    fields += [
        pa.field(n.EVENT_TIMESTAMP, pa.timestamp("us", tz="UTC")),
        pa.field(n.CREATED_TIMESTAMP, pa.timestamp("us", tz="UTC")),
    ]
    return pa.schema(fields)


@dataclass(frozen=True)
class OfflineTable:
    """Where one view's part files live and the schema every part is written with."""

    filesystem: pafs.FileSystem | None  # None: the local disk
    path: str
    schema: pa.Schema

    @classmethod
    def of(cls, view: FeatureView, s3_endpoint: str | None = None, join_key: str | None = None) -> OfflineTable:
        source = view.batch_source
        assert isinstance(source, FileSource)
        endpoint = s3_endpoint if s3_endpoint is not None else source.file_options.s3_endpoint_override
        filesystem, path = FileSource.create_filesystem_and_path(source.path, endpoint)
        return cls(filesystem, path.rstrip("/"), offline_schema(view, join_key))

    def _info(self, path: str) -> pafs.FileInfo:
        return (self.filesystem or pafs.LocalFileSystem()).get_file_info(path)

    def ensure(self) -> bool:
        """Create the table directory with an empty part (readers need one file for the schema);
        a single-file table of an older layout becomes the directory's first part. True if created."""
        info = self._info(self.path)
        if info.type == pafs.FileType.Directory:
            return False
        local = self.filesystem or pafs.LocalFileSystem()
        if info.type == pafs.FileType.File:
            legacy = f"{self.path}.legacy"
            local.move(self.path, legacy)
            local.create_dir(self.path)
            local.move(legacy, f"{self.path}/part-0000000000000000-legacy.parquet")
            return True
        local.create_dir(self.path)
        self.write(self.schema.empty_table(), name="part-0000000000000000-schema.parquet")
        return True

    def append(self, frame: pd.DataFrame) -> str:
        """Write ``frame`` (the view's columns) as a new part; returns its path."""
        table = pa.Table.from_pandas(frame[self.schema.names], schema=self.schema, preserve_index=False)
        return self.write(table)

    def write(self, table: pa.Table, name: str | None = None) -> str:
        if name is None:
            stamp = int(datetime.now(UTC).timestamp() * 1_000_000)
            name = f"part-{stamp:016d}-{uuid.uuid4().hex[:12]}.parquet"
        final = f"{self.path}/{name}"
        table = table.select(self.schema.names).cast(self.schema)
        if self.filesystem is not None:
            pq.write_table(table, final, filesystem=self.filesystem, use_compliant_nested_type=False)
            return final
        staging = f"{self.path}/.{name}.writing"
        pq.write_table(table, staging, use_compliant_nested_type=False)
        os.replace(staging, final)
        return final


class ParquetPartsOfflineStoreConfig(DaskOfflineStoreConfig):
    """``offline_store.type`` selecting ParquetPartsOfflineStore."""

    type: Literal["services.feature.offline.ParquetPartsOfflineStore"] = STORE_TYPE  # type: ignore[assignment]


class ParquetPartsOfflineStore(DaskOfflineStore):
    """Feast's file (dask) offline store whose writes add a part file instead of rewriting the table."""

    @staticmethod
    def offline_write_batch(
        config: RepoConfig, feature_view: FeatureView, table: pa.Table, progress: Any
    ) -> None:
        OfflineTable.of(feature_view).write(table)
        if progress:
            progress(table.num_rows)
