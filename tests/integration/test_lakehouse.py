"""The lakehouse API over real Delta tables on the embedded S3."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import pyarrow as pa
import pytest

from mdslab.lakehouse import Lakehouse, Layer, SchemaMismatchError, TableMissingError, TableRegistry, TableSpec
from mdslab.lakehouse.tables import NotAppendOnlyError, StaleLayoutError
from mdslab.settings import Settings
from mdslab.workloads.bronze_landing import land_events

pytestmark = pytest.mark.integration

SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("amount", pa.float64()),
        pa.field("at", pa.timestamp("us", tz="UTC")),
    ]
)


@pytest.fixture
def lake(isolated: Callable[[], Settings]) -> Lakehouse:
    from mdslab.workloads.lake import build_registry

    registry = build_registry()
    registry.register(TableSpec("silver.things", Layer.SILVER, "test/things", SCHEMA, "Test table.", key=("id",)))
    return Lakehouse.from_settings(isolated(), registry)


def rows(ids: list[str], amount: float = 1.0) -> pa.Table:
    at = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    return pa.table({"id": ids, "amount": [amount] * len(ids), "at": [at] * len(ids)}, schema=SCHEMA)


def test_mismatched_append_is_rejected_and_version_unchanged(lake: Lakehouse) -> None:
    assert lake.write_table("silver.things", rows(["a", "b"])) == 1
    bad = pa.table({"id": ["c"], "amount": ["1.0"], "at": [None], "extra": [1]})
    with pytest.raises(SchemaMismatchError) as error:
        lake.write_table("silver.things", bad)
    message = str(error.value)
    assert "table left at version 1" in message
    assert "column 'amount' is string, table expects double" in message
    assert "unexpected column 'extra'" in message
    assert lake.version("silver.things") == 1
    assert lake.row_count("silver.things") == 2


def test_nulls_in_a_required_column_are_rejected(lake: Lakehouse) -> None:
    lake.write_table("silver.things", rows(["a"]))
    with pytest.raises(SchemaMismatchError, match="column 'id' has 1 nulls but is not nullable"):
        lake.write_table("silver.things", pa.table({"id": [None], "amount": [1.0], "at": [None]}))


def test_widening_casts_are_accepted(lake: Lakehouse) -> None:
    batch = pa.table({"id": ["a"], "amount": pa.array([3], pa.int32()), "at": [None]})
    lake.write_table("silver.things", batch)
    assert lake.read_table("silver.things").column("amount").to_pylist() == [3.0]


def test_time_travel_reads_each_version(lake: Lakehouse) -> None:
    lake.write_table("silver.things", rows(["a"]))
    lake.write_table("silver.things", rows(["b", "c"]))
    lake.write_table("silver.things", rows(["z"]), mode="overwrite")
    assert lake.row_count("silver.things", version=1) == 1
    assert sorted(lake.read_table("silver.things", version=2).column("id").to_pylist()) == ["a", "b", "c"]
    assert lake.read_table("silver.things").column("id").to_pylist() == ["z"]


def test_merge_upserts_on_the_key(lake: Lakehouse) -> None:
    lake.write_table("silver.things", rows(["a", "b"], amount=1.0))
    result = lake.merge_table("silver.things", rows(["b", "c"], amount=2.0))
    assert (result.inserted, result.updated) == (1, 1)
    table = lake.read_table("silver.things").sort_by("id")
    assert table.column("amount").to_pylist() == [1.0, 2.0, 2.0]


def test_rows_in_files_added_after_a_version_are_what_commits_since_wrote(lake: Lakehouse) -> None:
    """What the gate's key check reads instead of the whole table: appended rows, and the whole file a
    MERGE rewrote (its untouched rows included), never a file the earlier version already had."""
    first = lake.write_table("silver.things", rows(["a", "b"]))
    lake.write_table("silver.things", rows(["c"]))
    appended = lake.rows_in_files_added_after("silver.things", version=first, columns=["id"])
    assert appended is not None and appended.column("id").to_pylist() == ["c"]
    lake.merge_table("silver.things", rows(["b", "d"], amount=2.0))
    added = lake.rows_in_files_added_after("silver.things", version=first, columns=["id"])
    assert added is not None and sorted(added.column("id").to_pylist()) == ["a", "b", "c", "d"]  # a: b's file
    latest = lake.version("silver.things") or 0
    nothing = lake.rows_in_files_added_after("silver.things", version=latest, columns=["id"])
    assert nothing is not None and nothing.num_rows == 0
    # a version the log no longer has (expired, or the table recreated): the caller checks everything
    assert lake.rows_in_files_added_after("silver.things", version=latest + 5, columns=["id"]) is None


def test_a_table_of_an_older_design_changes_only_by_a_full_overwrite(lake: Lakehouse) -> None:
    """The lab before and after an upgrade that partitions ``silver.things`` by month instead of by day."""
    day, month = pa.field("day", pa.date32()), pa.field("month", pa.date32())
    before, after = TableRegistry(), TableRegistry()
    before.register(
        TableSpec("silver.things", Layer.SILVER, "test/things", SCHEMA.append(day), "Old.", ("day",), ("id",))
    )
    after.register(
        TableSpec("silver.things", Layer.SILVER, "test/things", SCHEMA.append(month), "New.", ("month",), ("id",))
    )
    old_lab, new_lab = (Lakehouse(registry, lake.lake, lake.storage_options) for registry in (before, after))
    first = dt.date(2026, 10, 1)
    old_lab.write_table("silver.things", rows(["a", "b"]).append_column(day, pa.array([first, first])))
    assert old_lab.layout_changes("silver.things") == []
    assert new_lab.layout_changes("silver.things") == [
        "partitioned by day, registered month",
        "column month is new",
        "column day is gone",
    ]

    batch = rows(["c"]).append_column(month, pa.array([first]))
    for refused in (
        lambda: new_lab.write_table("silver.things", batch),
        lambda: new_lab.merge_table("silver.things", batch),
    ):
        with pytest.raises(
            StaleLayoutError, match=r"older design \(partitioned by day, registered month; .*--full-refresh"
        ):
            refused()
    assert new_lab.version("silver.things") == 1  # nothing was written

    new_lab.write_table("silver.things", batch, mode="overwrite")
    assert new_lab.layout_changes("silver.things") == []
    assert new_lab.delta("silver.things").metadata().partition_columns == ["month"]
    assert new_lab.read_table("silver.things").column("id").to_pylist() == ["c"]
    assert old_lab.read_table("silver.things", version=1).column("day").to_pylist() == [first, first]  # history stays
    new_lab.write_table("silver.things", rows(["d"]).append_column(month, pa.array([first])))  # appends again
    assert new_lab.row_count("silver.things") == 2
    assert new_lab.appended_rows("silver.things", after=2, to=3).column("id").to_pylist() == ["d"]
    with pytest.raises(NotAppendOnlyError, match=r"v2..v3 holds an overwrite \(v2\)"):
        new_lab.appended_rows("silver.things", after=1, to=3)  # an increment across the change starts over


def test_commit_metadata_is_read_back(lake: Lakehouse) -> None:
    lake.write_table("silver.things", rows(["a"]), metadata={"step": "s", "inputs": {"bronze.x": 3}})
    assert lake.commit_metadata("silver.things") == {"step": "s", "inputs": {"bronze.x": 3}}


def test_optimize_compacts_small_files_and_keeps_rows(lake: Lakehouse) -> None:
    for index in range(4):
        lake.write_table("silver.things", rows([f"id{index}"]))
    result = lake.optimize("silver.things", retain_hours=0)
    assert (result.files_before, result.files_after) == (4, 1)
    assert result.files_vacuumed >= 4
    assert lake.row_count("silver.things") == 4


def test_info_lists_version_rows_and_last_operation(lake: Lakehouse) -> None:
    missing = lake.info("silver.things")
    assert (missing.version, missing.rows) == (None, 0)
    lake.write_table("silver.things", rows(["a", "b", "c"]))
    info = lake.info("silver.things")
    assert (info.version, info.rows, info.last_operation) == (1, 3, "WRITE")
    with pytest.raises(TableMissingError, match="run the step that builds it"):
        lake.read_table("gold.daily_spend")


def test_snapshots_kept_open_for_a_run_still_see_every_new_commit(lake: Lakehouse) -> None:
    """Inside ``reusing_snapshots`` a table is opened once, and its latest state still follows commits
    made through it and by another writer (here a second lake object, as a stream consumer would be)."""
    other_writer = Lakehouse(lake.registry, lake.lake, lake.storage_options)
    lake.write_table("silver.things", rows(["a"]))
    with lake.reusing_snapshots():
        opened = lake.delta("silver.things")
        assert lake.delta("silver.things") is opened
        lake.write_table("silver.things", rows(["b"]))
        other_writer.write_table("silver.things", rows(["c"]))
        assert sorted(lake.read_table("silver.things").column("id").to_pylist()) == ["a", "b", "c"]
        assert lake.version("silver.things") == 3 and lake.row_count("silver.things", version=1) == 1
        assert lake.delta("silver.things", version=1) is lake.delta("silver.things", version=1)
        in_another_thread: list[object] = []
        thread = threading.Thread(target=lambda: in_another_thread.append(lake.delta("silver.things")))
        thread.start()
        thread.join()
        assert in_another_thread[0] is not opened  # threads never share an open table
        created = lake.ensure_table("gold.daily_spend")
        assert lake.exists("gold.daily_spend") and lake.delta("gold.daily_spend") is created
    assert lake.delta("silver.things") is not lake.delta("silver.things")  # nothing kept after the block


def test_landing_a_batch_twice_lands_it_once(lake: Lakehouse) -> None:
    raw = pa.table({"event_id": ["e1", None], "payload": ['{"a": 1}', "not json"]})
    first = land_events(lake, "bronze.transactions", raw, batch_id="b1", source="t", contract_version="1.0.0")
    second = land_events(lake, "bronze.transactions", raw, batch_id="b1", source="t", contract_version="1.0.0")
    assert (first.skipped, second.skipped) == (False, True)
    assert lake.row_count("bronze.transactions") == 2
    other = land_events(lake, "bronze.transactions", raw, batch_id="b2", source="t", contract_version="1.0.0")
    assert not other.skipped and lake.row_count("bronze.transactions") == 4


def test_registry_refuses_inconsistent_specs() -> None:
    with pytest.raises(ValueError, match=r"must be named 'gold\.<table>'"):
        TableSpec("silver.x", Layer.GOLD, "x", SCHEMA, "x")
    with pytest.raises(ValueError, match=r"columns \['nope'\] are not in its schema"):
        TableSpec("gold.x", Layer.GOLD, "x", SCHEMA, "x", key=("nope",))
    with pytest.raises(ValueError, match="registered twice"):
        TableRegistry([TableSpec("gold.x", Layer.GOLD, "x", SCHEMA, "x")] * 2)
