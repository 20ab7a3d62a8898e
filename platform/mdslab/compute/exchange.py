"""Move table data between Delta Lake and Spark through Ray's object store: the hot path of every step.

PySpark here has no ``hadoop-aws`` (and no Delta jars), so Spark never opens ``s3a://`` paths. Instead:

* **Delta -> Spark** (:func:`delta_to_spark`): delta-rs resolves the snapshot (any version); its rows
  are read as Arrow, cast to the exact layout Spark expects and put into the object store as Arrow IPC
  streams; the Spark executors (Java Ray actors) read those bytes straight into a DataFrame. No Python
  worker and no pandas sit on the Spark side, so Spark's own Arrow reader converts the types.
  Two readers produce the Arrow: delta-rs's native scan in this process (fast, no extra processes;
  the only correct one for deletion vectors and column mapping) and Ray Data's parallel Parquet reads
  (scales out on a Ray cluster). ``reader="auto"`` picks the scan up to :data:`DRIVER_SCAN_MAX_BYTES`,
  and always on a one-node Ray, where Ray Data's tasks share the same cores and only add overhead.
* **Spark -> Arrow** (:func:`spark_to_arrow`): RayDP caches the DataFrame as Arrow IPC in its executors
  and one actor pulls the partitions into the object store; the caller gets a streaming
  ``pyarrow.RecordBatchReader`` for ``deltalake.write_deltalake``. ``ray.data.from_spark`` does the
  same with a Ray task per partition, which took 3-16 s for 2M rows here against ~2 s this way (see
  :class:`_PartitionFetcher`).

Files of tables with deletion vectors or column mapping cannot be read one by one with pyarrow: deleted
rows come back, and column-mapped files hold physical column names, for which pyarrow returns all-null
columns *without an error* (deltalake 1.6.6's ``to_pyarrow_dataset`` misses column mapping declared on
reader version 2, which is how delta-rs writes it). Such tables always go through delta-rs's scan.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import ray
from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_type, to_arrow_schema
from pyspark.sql.types import StructField, StructType
from pyspark.storagelevel import StorageLevel
from raydp.spark.dataset import _convert_by_rdd

from mdslab.errors import MdslabError

Reader = Literal["auto", "delta-rs", "ray-data"]

DRIVER_SCAN_MAX_BYTES = 512 * 1024 * 1024
"""Snapshots up to this much Parquet are read by delta-rs in this process under ``reader="auto"``.

Measured here (2 cores, S3 on SeaweedFS): 2M rows x 10 columns (49 MB of Parquet) reach Spark in ~0.6 s
through the scan against ~0.9 s through Ray Data, and a session's first read takes ~2 s against ~12 s
(Ray Data starts its workers), with ~1 GB less memory; 5M raw events (710 MB of Parquet) took 4.9 s
against 7.0 s (10.5 s against 16.1 s cold). Beyond this size, and only when Ray has other nodes,
reading in parallel Ray tasks should beat streaming everything through one process."""

# Reader features whose tables only delta-rs's scan reads correctly.
_SCAN_ONLY_READER_FEATURES = frozenset({"deletionVectors", "columnMapping"})
# Arrow bytes are ~2-3x Parquet bytes for typical tables (an upper estimate is used). Spark partitions
# aim at 8-64 MiB of Arrow: an executor copies a whole block into its heap, and larger blocks ran a 3 GB
# executor out of memory at 5M rows (see _layout).
_ARROW_PER_PARQUET_BYTE = 3
_MIN_BLOCK_BYTES = 8 * 1024 * 1024
_MAX_BLOCK_BYTES = 64 * 1024 * 1024


class ExchangeError(MdslabError):
    """Data could not be moved between a Delta table and Spark."""


def delta_to_spark(
    spark: SparkSession,
    table_uri: str,
    *,
    storage_options: Mapping[str, str],
    version: int | None = None,
    columns: Sequence[str] | None = None,
    reader: Reader = "auto",
) -> DataFrame:
    """Read a snapshot of a Delta table as a Spark DataFrame.

    ``version`` pins the snapshot (time travel); None reads the latest, resolved once here so that the
    schema and the rows come from the same commit even if a writer commits meanwhile. Partition
    columns come back as ordinary columns with their Delta types; ``columns`` projects (in that order).
    ``reader`` forces one reader (see the module doc); ``"ray-data"`` on a table only delta-rs reads
    correctly is an error rather than wrong rows.

    The rows are read now, not lazily by Spark: errors surface here, and the Spark plan only reads Arrow
    blocks from Ray's object store. The blocks stay pinned while a plan may still read them; free them
    with :func:`release_spark_input` when the step is done (stopping the Spark session frees them too).
    """
    table = _open_table(table_uri, storage_options, version)
    spark_schema = _spark_schema(table, columns)
    block_schema = to_arrow_schema(spark_schema)
    size = _snapshot_size(table)
    if size is None:
        return spark.createDataFrame([], spark_schema)
    parquet_bytes, rows = size
    layout = _layout(parquet_bytes, rows, spark.sparkContext.defaultParallelism)
    if _choose_reader(table, reader, parquet_bytes) == "delta-rs":
        refs = _scan_to_blocks(table, block_schema, columns, layout)
    else:
        refs = _ray_data_to_blocks(table, storage_options, block_schema, columns, layout)
    if not refs:
        return spark.createDataFrame([], spark_schema)
    df: DataFrame = _convert_by_rdd(spark, refs, _owner_addresses(refs), spark_schema)
    _pin(df, refs)
    return df


def arrow_to_spark(spark: SparkSession, table: pa.Table) -> DataFrame:
    """A small Arrow table as a Spark DataFrame through the same path as :func:`delta_to_spark` (one
    object-store block; release it with :func:`release_spark_input`)."""
    spark_schema = _spark_schema_of(table.schema)
    refs = [ray.put(arrow_to_spark_block(table, to_arrow_schema(spark_schema)))]
    df: DataFrame = _convert_by_rdd(spark, refs, _owner_addresses(refs), spark_schema)
    _pin(df, refs)
    return df


def spark_to_arrow(df: DataFrame) -> pa.RecordBatchReader:
    """Stream a Spark DataFrame out as Arrow record batches, ready for ``deltalake.write_deltalake``.

    The schema is Spark's, in Arrow terms: timestamps as ``timestamp[us, tz=UTC]`` (``timestamp[us]``
    for TIMESTAMP_NTZ), dates as ``date32``, decimals as ``decimal128(p, s)``, with Spark's nullability.
    Spark runs the plan when the first batch is read; batches then arrive one Spark partition at a time
    (two fetched ahead), and Spark's cached copy is dropped once the reader is exhausted or closed.
    """
    schema = to_arrow_schema(df.schema)
    return pa.RecordBatchReader.from_batches(schema, _stream_partitions(df, schema))


def release_spark_input(df: DataFrame) -> None:
    """Free the object-store blocks behind a DataFrame returned by :func:`delta_to_spark`.

    Call it once every DataFrame derived from ``df`` has been written or cached: Spark reads the blocks
    again whenever a plan built on ``df`` runs, and fails ("object is lost") once they are gone. The
    executors borrowed the blocks, so Ray frees them when the executor JVM has also dropped its
    references (its next garbage collection). Unknown DataFrames are ignored.
    """
    with _pinned_lock:
        _pinned.pop(id(df), None)


def release_all_spark_inputs() -> None:
    """Free every pinned input block; :func:`mdslab.compute.spark.stop_spark` calls this."""
    with _pinned_lock:
        _pinned.clear()


def pinned_input_count() -> int:
    """How many :func:`delta_to_spark` DataFrames still pin blocks (for tests and metrics)."""
    with _pinned_lock:
        return len(_pinned)


def prestart_exchange() -> None:
    """Start the actor that pulls Spark partitions out, without waiting for it.

    :func:`mdslab.compute.spark.start_spark` calls this so that the first :func:`spark_to_arrow` of a
    session does not pay the actor's start (~2.5 s of the ~4.5 s first call here).
    """
    _fetcher()


def arrow_to_spark_block(table: pa.Table, block_schema: pa.Schema) -> bytes:
    """Serialise ``table`` as the Arrow IPC stream that RayDP's executors decode into Spark rows.

    Spark loads the buffers into vectors built from the *Spark* schema without checking the Arrow
    types, so the table is cast to exactly that layout first (``string_view``/``large_string`` ->
    ``string``, nanosecond -> microsecond timestamps, ...): a mismatch would be read as garbage.
    Returned as ``bytes`` because Ray stores bytes raw, the only Python object Java can read.
    """
    table = table.select(block_schema.names).cast(block_schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, block_schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


# --- Delta -> Spark ---------------------------------------------------------------------------------

_pinned_lock = threading.Lock()
# id(DataFrame) -> (DataFrame, blocks); holding the DataFrame keeps its id from being reused.
_pinned: dict[int, tuple[DataFrame, list[ray.ObjectRef[bytes]]]] = {}


def _pin(df: DataFrame, refs: list[ray.ObjectRef[bytes]]) -> None:
    """Keep the blocks alive: executors only get their ids, and Ray frees an object with its last ref."""
    with _pinned_lock:
        _pinned[id(df)] = (df, refs)


def _owner_addresses(refs: list[ray.ObjectRef[bytes]]) -> list[bytes]:
    """Where each block's owner lives, for Spark's locality hints.

    The same as RayDP's ``get_locations`` minus its deprecation warning for ``ray.worker``.
    """
    core_worker = ray._private.worker.global_worker.core_worker  # type: ignore[attr-defined]
    return [core_worker.get_owner_address(ref) for ref in refs]


def _open_table(table_uri: str, storage_options: Mapping[str, str], version: int | None) -> DeltaTable:
    try:
        return DeltaTable(table_uri, version=version, storage_options=dict(storage_options))
    except Exception as exc:
        at = "its latest version" if version is None else f"version {version}"
        raise ExchangeError(f"Cannot open Delta table {table_uri} at {at}: {exc}") from exc


def _spark_schema(table: DeltaTable, columns: Sequence[str] | None) -> StructType:
    """Spark's schema for the snapshot, from the Delta log (so that empty tables have one too)."""
    arrow_schema = pa.schema(table.schema().to_arrow())
    if columns is not None:
        missing = [name for name in columns if name not in arrow_schema.names]
        if missing:
            raise ExchangeError(
                f"Columns {missing} are not in Delta table {table.table_uri}; it has {arrow_schema.names}."
            )
        arrow_schema = pa.schema([arrow_schema.field(name) for name in columns])
    return _spark_schema_of(arrow_schema)


def _spark_schema_of(arrow_schema: pa.Schema) -> StructType:
    return StructType(
        [
            StructField(field.name, from_arrow_type(field.type, prefer_timestamp_ntz=True), field.nullable)
            for field in arrow_schema
        ]
    )


def _snapshot_size(table: DeltaTable) -> tuple[int, int | None] | None:
    """Parquet bytes and rows of the snapshot's data files (rows None without file statistics), or
    None when it has no files."""
    actions = pa.table(table.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return None
    parquet_bytes = int(pc.sum(actions["size_bytes"]).as_py() or 0)
    records = actions["num_records"] if "num_records" in actions.column_names else None
    rows = None if records is None or records.null_count else int(pc.sum(records).as_py() or 0)
    return parquet_bytes, rows


@dataclass(frozen=True)
class _Layout:
    """How a snapshot is cut into blocks (= Spark partitions): by rows when the count is known."""

    blocks: int
    block_bytes: int
    rows_per_block: int | None


def _layout(parquet_bytes: int, rows: int | None, parallelism: int) -> _Layout:
    """Blocks of at most :data:`_MAX_BLOCK_BYTES` of Arrow, as many as a multiple of the executor cores.

    Equal blocks in a multiple of the cores keep every core busy to the end of the first stage (the
    costly one: silver parses JSON there); 3 blocks on 2 cores left one core idle for a third of it.
    Tables under ``_MIN_BLOCK_BYTES`` per core stay in one block.
    """
    parallelism = max(parallelism, 1)
    arrow_bytes = parquet_bytes * _ARROW_PER_PARQUET_BYTE
    blocks = max(1, math.ceil(arrow_bytes / _MAX_BLOCK_BYTES))
    if arrow_bytes >= _MIN_BLOCK_BYTES * parallelism:
        blocks = math.ceil(blocks / parallelism) * parallelism
    block_bytes = max(_MIN_BLOCK_BYTES, math.ceil(arrow_bytes / blocks))
    return _Layout(blocks, block_bytes, math.ceil(rows / blocks) if rows else None)


def _needs_delta_rs_scan(table: DeltaTable) -> bool:
    """Whether file-by-file Parquet reads would return wrong rows for this snapshot.

    Column mapping hides in the table configuration on reader version 2 (no reader features then),
    which is how delta-rs itself writes it, so both places are checked.
    """
    features = set(table.protocol().reader_features or ())
    mapping = table.metadata().configuration.get("delta.columnMapping.mode", "none")
    return bool(features & _SCAN_ONLY_READER_FEATURES) or mapping not in ("", "none")


def _choose_reader(table: DeltaTable, reader: Reader, parquet_bytes: int) -> Literal["delta-rs", "ray-data"]:
    if _needs_delta_rs_scan(table):
        if reader == "ray-data":
            raise ExchangeError(
                f"Delta table {table.table_uri} uses deletion vectors or column mapping, which Ray Data's "
                'Parquet reads would get wrong; use reader="delta-rs" (or "auto").'
            )
        return "delta-rs"
    if reader == "auto":
        return "delta-rs" if parquet_bytes <= DRIVER_SCAN_MAX_BYTES or _one_node() else "ray-data"
    return reader


def _one_node() -> bool:
    """Whether Ray runs on this machine alone (then Ray Data's tasks only compete for the same cores)."""
    nodes: list[dict[str, object]] = ray.nodes()  # type: ignore[no-untyped-call]
    return len([node for node in nodes if node.get("Alive")]) <= 1


def _scan_to_blocks(
    table: DeltaTable, block_schema: pa.Schema, columns: Sequence[str] | None, layout: _Layout
) -> list[ray.ObjectRef[bytes]]:
    """Stream delta-rs's scan into object-store blocks; at most about one block is held in this process."""
    scan = table.scan(columns=list(columns) if columns is not None else None)
    blocks: list[ray.ObjectRef[bytes]] = []
    pending: list[pa.RecordBatch] = []

    def full() -> bool:
        if layout.rows_per_block is not None:
            return sum(int(batch.num_rows) for batch in pending) >= layout.rows_per_block
        return sum(int(batch.nbytes) for batch in pending) >= layout.block_bytes

    for batch in pa.RecordBatchReader.from_stream(scan):
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        while full():
            data = pa.Table.from_batches(pending)
            cut = layout.rows_per_block or data.num_rows
            blocks.append(ray.put(arrow_to_spark_block(data.slice(0, cut), block_schema)))
            pending = data.slice(cut).to_batches()
    if pending:
        blocks.append(ray.put(arrow_to_spark_block(pa.Table.from_batches(pending), block_schema)))
    return blocks


def _ray_data_to_blocks(
    table: DeltaTable,
    storage_options: Mapping[str, str],
    block_schema: pa.Schema,
    columns: Sequence[str] | None,
    layout: _Layout,
) -> list[ray.ObjectRef[bytes]]:
    """Read the snapshot's files in Ray Data tasks; each output bundle becomes one Spark block."""
    dataset = ray.data.read_delta(
        table.table_uri,
        version=table.version(),
        storage_options=dict(storage_options),
        filesystem=arrow_filesystem(table.table_uri, storage_options),
        columns=list(columns) if columns is not None else None,
        override_num_blocks=layout.blocks,
    )
    blocks: list[ray.ObjectRef[bytes]] = []
    row_counts: list[ray.ObjectRef[int]] = []
    for bundle in dataset.iter_internal_ref_bundles():
        block, rows = _to_spark_block.remote(block_schema, *bundle.block_refs)
        blocks.append(block)
        row_counts.append(rows)
    counts = ray.get(row_counts)  # waits for the conversions, so that their errors raise here
    return [block for block, rows in zip(blocks, counts, strict=True) if rows]


@ray.remote(num_returns=2)
def _to_spark_block(block_schema: pa.Schema, *blocks: pa.Table) -> tuple[bytes, int]:
    table = pa.concat_tables(blocks) if len(blocks) > 1 else blocks[0]
    return arrow_to_spark_block(table, block_schema), table.num_rows


def arrow_filesystem(table_uri: str, storage_options: Mapping[str, str]) -> pafs.FileSystem | None:
    """A native pyarrow filesystem rooted at the table, or None to let delta-rs provide one.

    delta-rs's default filesystem for pyarrow is written in Python and read 2-6x slower here than
    pyarrow's own S3 client, so S3 and local tables get a native one built from the same options.
    Options this mapping does not know (profiles, virtual-hosted style, ...) fall back to delta-rs,
    which understands them all: correctness first.
    """
    parts = urlsplit(table_uri)
    if parts.scheme in ("", "file"):
        return pafs.SubTreeFileSystem(str(Path(parts.path or table_uri).resolve()), pafs.LocalFileSystem())
    if parts.scheme not in ("s3", "s3a"):
        return None
    options: dict[str, str] = {}
    for key, value in storage_options.items():
        name = _S3_OPTIONS.get(key.lower().removeprefix("aws_"))
        if name is None:
            return None
        options[name] = value
    endpoint = options.get("endpoint", "")
    endpoint_parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    if endpoint_parts.scheme == "http" and options.get("allow_http", "").lower() != "true":
        return None  # delta-rs refuses plain HTTP without AWS_ALLOW_HTTP; let it say so
    s3 = pafs.S3FileSystem(
        access_key=options.get("access_key"),
        secret_key=options.get("secret_key"),
        session_token=options.get("session_token"),
        region=options.get("region", "us-east-1"),
        endpoint_override=endpoint_parts.netloc or None,
        scheme=endpoint_parts.scheme,
    )
    return pafs.SubTreeFileSystem(f"{parts.netloc}{parts.path}".rstrip("/"), s3)


# delta-rs (object_store) S3 option names, without the optional "aws_" prefix -> pyarrow's meaning.
# Write-only options are harmless for reads and map to "ignored".
_S3_OPTIONS = {
    "access_key_id": "access_key",
    "secret_access_key": "secret_key",
    "session_token": "session_token",
    "token": "session_token",
    "region": "region",
    "default_region": "region",
    "endpoint_url": "endpoint",
    "endpoint": "endpoint",
    "allow_http": "allow_http",
    "s3_allow_unsafe_rename": "ignored",
    "conditional_put": "ignored",
}


# --- Spark -> Arrow ---------------------------------------------------------------------------------

_PREFETCH_PARTITIONS = 2


@ray.remote(num_cpus=0, max_concurrency=4)  # type: ignore[call-overload]
class _PartitionFetcher:
    """Asks RayDP executors (Java actors) for their cached Arrow partitions.

    Calling a Java actor from Python needs Ray's ``load_code_from_local`` switched on in the calling
    process, and the switch is permanent. RayDP's ``from_spark`` flips it in a pooled task worker per
    partition: slow (zero-CPU tasks each get a fresh worker; 0.5-13 s of fetching for 2M rows here
    against 0.3 s), and a pooled worker with the switch on later imports tasks' functions by module
    name, which re-ran a whole user script for a remote function defined in ``__main__``. One
    long-lived actor confines the switch to a process that runs nothing else.
    """

    def __init__(self) -> None:
        from raydp.spark.dataset import _enable_load_code_from_local

        _enable_load_code_from_local()

    def fetch(
        self, executor_id: str, rdd_id: int, partition: int, schema_json: str, driver_agent_url: str
    ) -> ray.ObjectRef[bytes]:
        executor = ray.get_actor(f"raydp-executor-{executor_id}")
        ref: ray.ObjectRef[bytes] = executor.getRDDPartition.remote(rdd_id, partition, schema_json, driver_agent_url)
        return ref


_fetcher_lock = threading.Lock()
_fetcher_handle: tuple[tuple[str, str], ray.actor.ActorHandle[_PartitionFetcher]] | None = None  # (Ray run, handle)


def _fetcher() -> ray.actor.ActorHandle[_PartitionFetcher]:
    """The process-wide fetcher, created on first use and kept.

    A Ray actor dies with its owner's last handle, and a new one costs a worker start plus the first
    cross-language call (~3 s here), so the handle lives in this module; a restarted Ray gets a new one.
    A restarted local Ray numbers its first job like the last one, so the run is (node id, job id).
    """
    global _fetcher_handle
    context = ray.get_runtime_context()
    run = (context.get_node_id(), context.get_job_id())
    with _fetcher_lock:
        if _fetcher_handle is None or _fetcher_handle[0] != run:
            _fetcher_handle = (run, _PartitionFetcher.remote())  # type: ignore[attr-defined]
        return _fetcher_handle[1]


def _stream_partitions(df: DataFrame, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Cache ``df`` as Arrow in the executors, then pull it one partition at a time."""
    context = df.sparkSession.sparkContext
    jvm = context._jvm
    if jvm is None:
        raise ExchangeError("The DataFrame's Spark session is stopped; start_spark() and rebuild it.")
    writer = jvm.org.apache.spark.sql.raydp.ObjectStoreWriter
    info = writer.prepareRecoverableRDD(df._jdf, context._getJavaStorageLevel(StorageLevel.MEMORY_AND_DISK))
    rdd_id = info.rddId()
    try:
        fetcher = _fetcher()
        schema_json, agent_url = info.schemaJson(), info.driverAgentUrl()
        pending: deque[ray.ObjectRef[ray.ObjectRef[bytes]]] = deque()
        for partition, executor_id in enumerate(info.locations()):
            pending.append(fetcher.fetch.remote(executor_id, rdd_id, partition, schema_json, agent_url))
            if len(pending) > _PREFETCH_PARTITIONS:
                yield from _partition_batches(pending.popleft(), schema)
        while pending:
            yield from _partition_batches(pending.popleft(), schema)
    finally:
        writer.releaseRecoverableRDD(rdd_id)


def _partition_batches(fetched: ray.ObjectRef[ray.ObjectRef[bytes]], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    data = ray.get(ray.get(fetched))
    for batch in pa.ipc.open_stream(data):
        if batch.schema.equals(schema):
            yield batch
        else:  # e.g. a session time zone other than UTC: same instants, other tz label
            yield from pa.Table.from_batches([batch]).select(schema.names).cast(schema).to_batches()
