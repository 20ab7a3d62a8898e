"""End-to-end freshness: how long an event waits between arriving in the lake and being visible to readers.

An event is *visible* once a publication of the quality gate includes the silver version that holds it
(gold is published with it). Its wait is measured from ``ingested_at`` (when bronze received it: the
stream consumer's commit, or the landing of a file drop) to that publication. Simulated events carry
simulated business times (``event_time`` in a past window), so arrival is the clock that means something
here; on a real feed the same figure from ``event_time`` is one column away.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from mdslab.lakehouse import Lakehouse, NotAppendOnlyError

VISIBLE_TABLES = ("silver.transactions", "silver.claims")


def newest_arrival(lake: Lakehouse, table: str, version: int | None) -> datetime | None:
    """The latest ``ingested_at`` in a snapshot, from the log's file statistics (no data is read)."""
    if version is None:
        return None
    actions = pa.table(lake.delta(table, version=version).get_add_actions(flatten=True))
    column = "max.ingested_at"
    if column not in actions.schema.names or not len(actions):
        return None
    newest: datetime | None = pc.max(actions.column(column)).as_py()
    return newest.replace(tzinfo=UTC) if newest is not None and newest.tzinfo is None else newest


STATS_RESOLUTION = timedelta(milliseconds=1)  # Delta's file statistics keep timestamps to the millisecond


def visible_waits(
    lake: Lakehouse, before: Mapping[str, int], after: Mapping[str, int], published_at: datetime
) -> list[float]:
    """Seconds each event first made visible by a publication (``before`` -> ``after`` versions) waited."""
    waits: list[float] = []
    for table in VISIBLE_TABLES:
        if table not in after or after.get(table) == before.get(table):
            continue
        stamps = _new_arrivals(lake, table, before.get(table), after[table]).to_pylist()
        waits.extend((published_at - stamp).total_seconds() for stamp in stamps)
    return waits


def _new_arrivals(lake: Lakehouse, table: str, before: int | None, after: int) -> pa.ChunkedArray:
    """``ingested_at`` of the rows ``after`` holds and ``before`` did not: the commits in between when
    they only added rows (an increment), else the rows that arrived after the previous version's newest."""
    if before is not None:
        try:
            return lake.appended_rows(table, after=before, to=after, columns=["ingested_at"]).column("ingested_at")
        except NotAppendOnlyError:
            pass  # a full build rewrote the table
    previous = newest_arrival(lake, table, before)
    # rows of the previous version arrived before its truncated maximum + 1 ms
    filters = pc.field("ingested_at") >= previous + STATS_RESOLUTION if previous is not None else None
    return lake.read_table(table, version=after, columns=["ingested_at"], filters=filters).column("ingested_at")
