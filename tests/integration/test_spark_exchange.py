"""Delta <-> Spark exchange against a real S3 (SeaweedFS) and a real RayDP Spark session on local Ray."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from mdslab import objectstore
from mdslab.compute.exchange import (
    ExchangeError,
    Reader,
    arrow_to_spark,
    delta_to_spark,
    pinned_input_count,
    release_spark_input,
    spark_to_arrow,
)
from mdslab.compute.java import JavaNotFoundError, find_java_home
from mdslab.compute.spark import start_spark
from mdslab.settings import ComputeSettings, Settings

pytestmark = pytest.mark.integration

UTC = dt.UTC
BUCKET = "exchange-tests"
READERS: list[Reader] = ["delta-rs", "ray-data"]


# --- fixtures: the run's embedded S3 and its one Spark session (tests/conftest.py) --------------------------


@dataclass(frozen=True)
class S3Service:
    storage_options: dict[str, str]


@pytest.fixture(scope="module")
def s3(services: Settings) -> S3Service:
    """The run's embedded S3 with a bucket of this module's own."""
    objectstore.ensure_buckets(objectstore.s3_client(services.s3), [BUCKET])
    return S3Service(objectstore.delta_storage_options(services.s3))


@pytest.fixture
def table_uri(request: pytest.FixtureRequest) -> str:
    return f"s3://{BUCKET}/{request.node.name.replace('[', '-').rstrip(']')}"


# --- data -------------------------------------------------------------------------------------------


def typed_table() -> pa.Table:
    """Every scalar type a pipeline writes, with a null in each column and values at the edges of the
    ranges (pre-1970, beyond pandas' nanosecond range, -0.0, infinity, non-ASCII)."""
    return pa.table(
        {
            "id": pa.array([1, 2, 3, 4], pa.int64()),
            "small": pa.array([1, None, -3, 2**31 - 1], pa.int32()),
            "event_ts": pa.array(
                [
                    dt.datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
                    None,
                    dt.datetime(1900, 1, 1, tzinfo=UTC),
                    dt.datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "local_ts": pa.array(
                [dt.datetime(2024, 3, 1, 12), None, dt.datetime(1969, 12, 31, 23, 59, 59, 999999), None],
                pa.timestamp("us"),
            ),
            "day": pa.array([dt.date(2024, 3, 1), None, dt.date(1, 1, 1), dt.date(9999, 12, 31)], pa.date32()),
            "amount": pa.array([1.5, None, -0.0, math.inf], pa.float64()),
            "price": pa.array(
                [Decimal("12.34"), None, Decimal("-0.01"), Decimal("9999999999.99")], pa.decimal128(12, 2)
            ),
            "name": pa.array(["a", None, "", "Zürich ✓"], pa.string()),
            "flag": pa.array([True, None, False, True], pa.bool_()),
            "raw": pa.array([b"\x00\x01", None, b"", b"x"], pa.binary()),
            "tags": pa.array([["a", "b"], None, [], [None]], pa.list_(pa.string())),
            "address": pa.array(
                [{"city": "X", "zip": 1}, None, {"city": None, "zip": 2}, {"city": "Y", "zip": None}],
                pa.struct([("city", pa.string()), ("zip", pa.int32())]),
            ),
        }
    )


def transactions(rows: int) -> pa.Table:
    ids = np.arange(rows, dtype=np.int64)
    start = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64)
    return pa.table(
        {
            "event_id": pa.array(ids),
            "customer_id": pa.array(ids % 1000),
            "amount": pa.array((ids % 997) * 1.25),
            "currency": pa.array(np.array(["EUR", "USD", "GBP", None], dtype=object)[ids % 4], pa.string()),
            "event_ts": pa.array(start + ids * 1_000_000, pa.timestamp("us", tz="UTC")),
        }
    )


def read_back(df_reader: pa.RecordBatchReader) -> pa.Table:
    return df_reader.read_all().sort_by("id")


# --- tests ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reader", READERS)
def test_typed_table_round_trips_through_spark_unchanged(
    spark: SparkSession, s3: S3Service, table_uri: str, reader: Reader
) -> None:
    source = typed_table()
    write_deltalake(table_uri, source, storage_options=s3.storage_options)

    df = delta_to_spark(spark, table_uri, storage_options=s3.storage_options, reader=reader)
    result = read_back(spark_to_arrow(df))

    assert dict(zip(df.schema.names, [f.dataType.simpleString() for f in df.schema], strict=True)) == {
        "id": "bigint",
        "small": "int",
        "event_ts": "timestamp",
        "local_ts": "timestamp_ntz",
        "day": "date",
        "amount": "double",
        "price": "decimal(12,2)",
        "name": "string",
        "flag": "boolean",
        "raw": "binary",
        "tags": "array<string>",
        "address": "struct<city:string,zip:int>",
    }
    assert result.schema == source.schema
    assert result.to_pylist() == source.to_pylist()
    assert spark_to_arrow(df.where("id < 0")).read_all().schema == source.schema


@pytest.mark.parametrize("reader", READERS)
def test_time_travel_reads_the_rows_of_an_older_version(
    spark: SparkSession, s3: S3Service, table_uri: str, reader: Reader
) -> None:
    write_deltalake(table_uri, pa.table({"id": [1, 2]}), storage_options=s3.storage_options)
    write_deltalake(table_uri, pa.table({"id": [3]}), mode="append", storage_options=s3.storage_options)
    write_deltalake(table_uri, pa.table({"id": [9]}), mode="overwrite", storage_options=s3.storage_options)

    def ids(version: int | None) -> list[int]:
        df = delta_to_spark(spark, table_uri, storage_options=s3.storage_options, version=version, reader=reader)
        return sorted(row.id for row in df.collect())

    assert ids(0) == [1, 2]
    assert ids(1) == [1, 2, 3]
    assert ids(None) == [9]


@pytest.mark.parametrize("reader", READERS)
def test_partitioned_table_keeps_its_partition_column(
    spark: SparkSession, s3: S3Service, table_uri: str, reader: Reader
) -> None:
    source = pa.table(
        {
            "id": pa.array([1, 2, 3, 4], pa.int64()),
            "day": pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 1), None]),
            "region": ["eu", "us", "us", "eu"],
        }
    )
    write_deltalake(table_uri, source, partition_by=["day", "region"], storage_options=s3.storage_options)

    df = delta_to_spark(spark, table_uri, storage_options=s3.storage_options, reader=reader)
    projected = delta_to_spark(
        spark, table_uri, storage_options=s3.storage_options, columns=["region", "id"], reader=reader
    )

    assert read_back(spark_to_arrow(df)).to_pylist() == source.to_pylist()
    assert df.where(F.col("day") == F.lit(dt.date(2024, 1, 1))).count() == 2
    assert projected.columns == ["region", "id"]
    assert sorted((row.region, row.id) for row in projected.collect()) == [
        ("eu", 1),
        ("eu", 4),
        ("us", 2),
        ("us", 3),
    ]


@pytest.mark.parametrize("reader", READERS)
def test_empty_table_round_trips_with_its_schema(
    spark: SparkSession, s3: S3Service, table_uri: str, reader: Reader
) -> None:
    source = typed_table().slice(0, 0)
    write_deltalake(table_uri, source, storage_options=s3.storage_options)

    df = delta_to_spark(spark, table_uri, storage_options=s3.storage_options, reader=reader)
    result = spark_to_arrow(df).read_all()

    assert df.count() == 0
    assert result.num_rows == 0
    assert result.schema == source.schema
    assert (
        spark_to_arrow(df.where("id > 0").select("id", "event_ts")).read_all().schema
        == source.select(["id", "event_ts"]).schema
    )


def test_200k_rows_round_trip_through_a_spark_aggregation_into_delta(
    spark: SparkSession, s3: S3Service, table_uri: str
) -> None:
    rows = 200_000
    write_deltalake(table_uri, transactions(rows), storage_options=s3.storage_options)

    df = delta_to_spark(spark, table_uri, storage_options=s3.storage_options, reader="ray-data")
    daily = df.groupBy("customer_id", F.to_date("event_ts").alias("day")).agg(
        F.count("*").alias("events"), F.sum("amount").alias("spend")
    )
    write_deltalake(f"{table_uri}-daily", spark_to_arrow(daily), storage_options=s3.storage_options)
    write_deltalake(f"{table_uri}-copy", spark_to_arrow(df), storage_options=s3.storage_options)

    written = DeltaTable(f"{table_uri}-daily", storage_options=s3.storage_options).to_pyarrow_table()
    copied = DeltaTable(f"{table_uri}-copy", storage_options=s3.storage_options).to_pyarrow_table()
    assert copied.num_rows == rows
    assert copied.sort_by("event_id").equals(transactions(rows))
    assert pc.sum(written["events"]).as_py() == rows
    assert written.schema.field("day").type == pa.date32()


def test_column_mapped_table_reads_its_values_not_nulls(spark: SparkSession, s3: S3Service, table_uri: str) -> None:
    source = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": ["a", "b", None]})
    write_deltalake(
        table_uri,
        source,
        configuration={
            "delta.columnMapping.mode": "name",
            "delta.minReaderVersion": "2",
            "delta.minWriterVersion": "5",
        },
        storage_options=s3.storage_options,
    )

    df = delta_to_spark(spark, table_uri, storage_options=s3.storage_options)

    assert read_back(spark_to_arrow(df)).to_pylist() == source.to_pylist()
    with pytest.raises(ExchangeError, match="column mapping"):
        delta_to_spark(spark, table_uri, storage_options=s3.storage_options, reader="ray-data")


def test_table_with_deletion_vectors_enabled_is_read_through_delta_rs(
    spark: SparkSession, s3: S3Service, table_uri: str
) -> None:
    write_deltalake(
        table_uri,
        pa.table({"id": pa.array([1, 2, 3], pa.int64())}),
        configuration={"delta.enableDeletionVectors": "true"},
        storage_options=s3.storage_options,
    )
    DeltaTable(table_uri, storage_options=s3.storage_options).delete("id = 2")

    df = delta_to_spark(spark, table_uri, storage_options=s3.storage_options)

    assert sorted(row.id for row in df.collect()) == [1, 3]
    with pytest.raises(ExchangeError, match="deletion vectors"):
        delta_to_spark(spark, table_uri, storage_options=s3.storage_options, reader="ray-data")


def test_released_input_is_no_longer_pinned(spark: SparkSession, s3: S3Service, table_uri: str) -> None:
    write_deltalake(table_uri, pa.table({"id": [1, 2, 3]}), storage_options=s3.storage_options)
    before = pinned_input_count()
    df = delta_to_spark(spark, table_uri, storage_options=s3.storage_options)
    assert pinned_input_count() == before + 1
    assert df.count() == 3

    release_spark_input(df)

    assert pinned_input_count() == before


def test_arrow_table_round_trips_through_spark_and_is_released(spark: SparkSession) -> None:
    source = typed_table()
    before = pinned_input_count()
    df = arrow_to_spark(spark, source)
    assert pinned_input_count() == before + 1

    assert read_back(spark_to_arrow(df)).to_pylist() == source.to_pylist()
    release_spark_input(df)
    assert pinned_input_count() == before


def test_missing_column_is_named_in_the_error(spark: SparkSession, s3: S3Service, table_uri: str) -> None:
    write_deltalake(table_uri, pa.table({"id": [1]}), storage_options=s3.storage_options)

    with pytest.raises(ExchangeError, match=r"\['nope'\]"):
        delta_to_spark(spark, table_uri, storage_options=s3.storage_options, columns=["id", "nope"])


def test_second_start_reuses_the_running_session(spark: SparkSession) -> None:
    again = start_spark(ComputeSettings())

    assert again.reused
    assert again.spark is spark
    assert again.started_in_s > 0


def test_configured_java_home_of_another_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "java").write_text("")
    (tmp_path / "release").write_text('JAVA_VERSION="21.0.2"\n')

    with pytest.raises(JavaNotFoundError, match=r"Java 21; Spark 3\.5 with RayDP needs Java 17"):
        find_java_home(tmp_path)
