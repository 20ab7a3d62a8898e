"""The lake bench/sql.py queries, and the local Parquet copy of its snapshots that sets the ceiling.

The lake: a lab of its own (``bench-sql-n{rows}-s{seed}``) where a simulated batch of ``rows``
transactions is landed and built by the pipeline (Spark on Ray, gated and published, as ``mdslab
pipeline run`` does), then a continuation of 1% is landed and built incrementally, so every silver and
gold table has a published past version to travel back to. With ``--keep-lakes`` a finished lake is
kept and a later run with the same size and seed queries it again without rebuilding.

The ceiling: the Parquet files of exactly the snapshots a query reads, copied byte for byte from the
object store to local disk (same files, row groups and compression; partition values from the Delta
paths), read by DuckDB's own Parquet reader. What ``mdslab sql`` costs on top of it is the object
store, the Delta log and the Arrow hand-over from delta-rs to DuckDB.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
from _harness import drop_lab, lab
from _incremental import feed

from mdslab import objectstore
from mdslab.lakehouse import Lakehouse, publications
from mdslab.lakehouse.sql import TableRef, duckdb_quote, first_rows
from mdslab.settings import Settings
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.pipeline.runner import run_pipeline
from mdslab.workloads.pipeline.step_runtime import SparkProvider

TRAVEL_TABLE = "silver.transactions"  # the table the time-travel query reads one build back
DUCKDB_TYPES = {pa.date32(): "DATE", pa.string(): "VARCHAR", pa.int32(): "INTEGER", pa.int64(): "BIGINT"}


@dataclass
class BenchLake:
    settings: Settings
    lake: Lakehouse
    previous: int  # the version of TRAVEL_TABLE the first build published
    builds_s: dict[str, float] = field(default_factory=dict)  # empty: a kept lake, built by an earlier run


def continuation_rows(rows: int) -> int:
    return max(1_000, rows // 100)


def prepare(base: Settings, rows: int, seed: int, spark: SparkProvider, say: Callable[[str], None]) -> BenchLake:
    """The size's lake, built now unless an earlier ``--keep-lakes`` run left it finished."""
    tag = f"bench-sql-n{rows}-s{seed}"
    settings = lab(base, tag)
    lake = lakehouse(settings)
    if (previous := published_before(lake)) is not None:
        return BenchLake(settings, lake, previous)
    if lake.exists("bronze.transactions"):  # an earlier run stopped half-way: start again from nothing
        drop_lab(settings)
        settings = lab(base, tag)
        lake = lakehouse(settings)
    builds: dict[str, float] = {}
    for label, count, run_seed in (("first build", rows, seed), ("continuation", continuation_rows(rows), seed + 1)):
        say(f"{label}: simulating and landing {count:,} transactions")
        feed(settings, count, run_seed)
        say(f"{label}: building {count:,} transactions (Spark on Ray, quality gate, publication)")
        started = time.perf_counter()
        report = run_pipeline(settings, spark=spark)
        builds[label] = round(time.perf_counter() - started, 3)
        if not report.published:
            raise RuntimeError(f"{tag}, {label}: {report.gate_line()}")
    previous = published_before(lake)
    if previous is None:
        raise RuntimeError(f"{tag}: the continuation published no new version of {TRAVEL_TABLE}")
    return BenchLake(settings, lake, previous, builds)


def published_before(lake: Lakehouse) -> int | None:
    """The version of TRAVEL_TABLE published before the current one (None: fewer than two builds)."""
    found = publications.history(lake.publications_uri, lake.storage_options, TRAVEL_TABLE)
    versions = list(dict.fromkeys(publication.version for publication in found))  # newest first
    return versions[1] if len(versions) > 1 else None


@dataclass(frozen=True)
class LocalCopy:
    """One snapshot's Parquet files on local disk, and the two ways the benchmark reads them."""

    root: Path  # the files sit under it as in the table's directory (partition values in the paths)
    files: list[str]
    partitions: pa.Schema  # the partition columns, typed as the registry declares them

    def read_parquet(self) -> str:
        """DuckDB's own Parquet reader over the files: the ceiling."""
        listed = ", ".join(f"'{file}'" for file in self.files)
        if not self.partitions.names:
            return f"read_parquet([{listed}])"
        types = ", ".join(f"'{field.name}': '{DUCKDB_TYPES[field.type]}'" for field in self.partitions)
        return f"read_parquet([{listed}], hive_partitioning = true, hive_types = {{{types}}})"

    def arrow_dataset(self) -> ds.Dataset:
        """The files as an Arrow dataset, handed to DuckDB as ``mdslab sql`` hands delta-rs's: the Arrow
        path without the object store and the Delta log."""
        partitioning = ds.partitioning(self.partitions, flavor="hive") if self.partitions.names else None
        return ds.dataset(self.files, format="parquet", partitioning=partitioning, partition_base_dir=str(self.root))


def copy_snapshots(settings: Settings, lake: Lakehouse, refs: list[TableRef], root: Path) -> dict[str, LocalCopy]:
    """Download the Parquet files of each snapshot under ``root``, per view."""
    client = objectstore.s3_client(settings.s3, timeout_s=120)
    copies = {}
    for ref in refs:
        table = lake.delta(ref.table, version=ref.version)
        prefix = table.table_uri.rstrip("/") + "/"
        files = []
        for uri in table.file_uris():
            local = root / ref.view / uri.removeprefix(prefix)
            parts = urlsplit(uri)
            client.fget_object(parts.netloc, parts.path.lstrip("/"), str(local))
            files.append(str(local))
        spec = lake.spec(ref.table)
        partitions = pa.schema([spec.schema.field(column) for column in spec.partition_by])
        copies[ref.view] = LocalCopy(root / ref.view, files, partitions)
    return copies


def run_local(copies: dict[str, LocalCopy], text: str, limit: int, *, arrow: bool = False) -> pa.Table:
    """The query on DuckDB over the local copy (its Parquet reader, or ``arrow``: the files as Arrow
    datasets); a new connection each time, as ``mdslab sql`` opens one."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for view, copy in copies.items():
            if arrow:
                con.register(view, copy.arrow_dataset())
            else:
                con.execute(f"CREATE VIEW {duckdb_quote(view)} AS SELECT * FROM {copy.read_parquet()}")
        rows, _ = first_rows(con.sql(text).to_arrow_reader(), limit)
        return rows
    finally:
        con.close()
