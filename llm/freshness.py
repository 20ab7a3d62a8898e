"""Is the RAG index behind the lake? Answers cite rows of the table versions they were indexed from;
when a table has since published a newer version, those answers may be out of date.

Read-only and light on purpose: `mdslab status` asks it, and must neither create the index's schema
nor load the embedding model to do so.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from mdslab import database
from mdslab.lakehouse import Lakehouse
from mdslab.settings import Settings


@dataclass(frozen=True)
class StaleSource:
    table: str
    indexed: int
    published: int

    def line(self) -> str:
        return f"{self.table} indexed at v{self.indexed}, published v{self.published}: `mdslab rag index` catches up"


def indexed_table_versions(settings: Settings) -> dict[str, int] | None:
    """Table -> the newest version the index holds chunks of; None when nothing was indexed yet."""
    schema = settings.rag.schema_name
    with database.connect(settings.postgres) as conn:
        found = conn.execute("SELECT to_regclass(%s)", (f"{schema}.chunks",)).fetchone()
        if found is None or found[0] is None:
            return None
        rows = conn.execute(
            sql.SQL(
                "SELECT source_table, max(table_version) FROM {}.chunks WHERE source_table IS NOT NULL GROUP BY 1"
            ).format(sql.Identifier(schema))
        ).fetchall()
    return {str(table): int(version) for table, version in rows if version is not None}


def stale_sources(indexed: dict[str, int], lake: Lakehouse) -> list[StaleSource]:
    """The indexed tables whose published version is newer than the one indexed."""
    stale = []
    for table, version in sorted(indexed.items()):
        if table not in lake.registry:
            continue
        published = lake.current_version(table)
        if published is not None and published > version:
            stale.append(StaleSource(table, version, published))
    return stale
