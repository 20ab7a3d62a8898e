"""The data catalog: every table and column with its meaning, owner, contract and classification (what the
code declares and derives, so it is complete before anything has run), and, for one table, what the lake
and the lineage store know of it now (version, size, freshness, last writer, last checks, neighbours)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mdslab.errors import did_you_mean
from mdslab.lakehouse import Lakehouse, TableRegistry
from mdslab.lakehouse.registry import UnknownTableError
from mdslab.workloads.lake import TABLE_CONTRACTS
from mdslab.workloads.lineage.classification import Tags, classify, has_tag
from mdslab.workloads.lineage.graph import pipeline_lineage
from mdslab.workloads.lineage.recorded import Assertion, RecordedLineage, Writer


@dataclass(frozen=True)
class CatalogColumn:
    name: str
    type: str
    nullable: bool
    description: str
    tags: Tags


@dataclass(frozen=True)
class CatalogTable:
    name: str
    layer: str
    description: str
    owner: str
    contract: str | None  # "<name> <version>"
    audited: bool
    key: tuple[str, ...]
    partition_by: tuple[str, ...]
    columns: tuple[CatalogColumn, ...]

    @property
    def tags(self) -> list[str]:
        return sorted({tag for column in self.columns for tag in column.tags})

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "layer": self.layer,
            "description": self.description,
            "owner": self.owner,
            "contract": self.contract,
            "audited": self.audited,
            "key": list(self.key),
            "partition_by": list(self.partition_by),
            "tags": self.tags,
            "columns": [column.__dict__ for column in self.columns],
        }


def catalog(registry: TableRegistry, cache_dir: Path | None = None) -> list[CatalogTable]:
    """Every registered table, its columns classified (declared, or inherited through column lineage)."""
    classes = classify(registry, pipeline_lineage(registry, cache_dir))
    tables = []
    for spec in registry:
        model = TABLE_CONTRACTS.get(spec.name)
        columns = tuple(
            CatalogColumn(f.name, str(f.type), f.nullable, spec.column_docs.get(f.name, ""), classes[spec.name][f.name])
            for f in spec.schema
        )
        tables.append(
            CatalogTable(
                spec.name,
                str(spec.layer),
                spec.description,
                spec.owner,
                None if model is None else f"{model.CONTRACT_NAME} {model.CONTRACT_VERSION}",
                spec.audited,
                spec.key,
                spec.partition_by,
                columns,
            )
        )
    return tables


@dataclass(frozen=True)
class Match:
    """A search hit: a table, or one of its columns, and what matched."""

    table: CatalogTable
    column: CatalogColumn | None
    matched: str  # name, description, owner, tag

    def as_dict(self) -> dict[str, Any]:
        column = self.column
        return {
            "table": self.table.name,
            "layer": self.table.layer,
            "owner": self.table.owner,
            "column": None if column is None else column.name,
            "matched": self.matched,
            "tags": self.table.tags if column is None else column.tags,
            "description": self.table.description if column is None else column.description,
        }


def search(
    tables: list[CatalogTable], text: str = "", *, tag: str | None = None, layer: str | None = None
) -> list[Match]:
    """Tables and columns whose name, description, owner or tag holds ``text`` (case-insensitive), only
    columns carrying ``tag`` if given (``pii`` matches ``pii.email``), only tables of ``layer``. With
    neither text nor tag, every table."""
    needle = text.strip().lower()
    found = []
    for table in tables:
        if layer is not None and table.layer != layer:
            continue
        if tag is None and not needle:
            found.append(Match(table, None, ""))
            continue
        if tag is None:
            hit = _hit(needle, name=table.name, description=table.description, owner=table.owner)
            if hit:
                found.append(Match(table, None, hit))
        for column in table.columns:
            if tag is not None and not has_tag(column.tags, tag):
                continue
            hit = _hit(needle, name=column.name, description=column.description, tag=" ".join(column.tags))
            if hit or (tag is not None and not needle):
                found.append(Match(table, column, hit or "tag"))
    return found


def _hit(needle: str, **fields: str) -> str:
    if not needle:
        return ""
    return next((what for what, value in fields.items() if needle in value.lower()), "")


def find_table(tables: list[CatalogTable], name: str) -> CatalogTable:
    for table in tables:
        if table.name == name:
            return table
    hint = did_you_mean(name, [t.name for t in tables], "`mdslab catalog` lists them", cutoff=0.5)
    raise UnknownTableError(f"no table {name!r} in the catalog; {hint}")


@dataclass
class TableState:
    """What the lake and the lineage store say of a table now."""

    version: int | None
    published: int | None
    rows: int
    size_bytes: int
    files: int
    last_commit: datetime | None
    writer: Writer | None
    quality: list[Assertion]
    upstream: list[str]
    downstream: list[str]
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def age_s(self) -> float | None:
        """Freshness: seconds since its last commit."""
        return None if self.last_commit is None else (self.checked_at - self.last_commit).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        writer = self.writer
        return {
            "version": self.version,
            "published": self.published,
            "rows": self.rows,
            "size_bytes": self.size_bytes,
            "files": self.files,
            "last_commit": None if self.last_commit is None else self.last_commit.isoformat(),
            "age_s": self.age_s,
            "last_writer": None
            if writer is None
            else {"job": writer.job, "run_id": writer.run_id, "at": writer.at.isoformat(), "version": writer.version},
            "quality": [
                {"check": a.check, "success": a.success, "detail": a.detail, "run_id": a.run_id, "at": a.at.isoformat()}
                for a in self.quality
            ],
            "upstream": self.upstream,
            "downstream": self.downstream,
        }


def table_state(lake: Lakehouse, graph: RecordedLineage, name: str) -> TableState:
    info = lake.info(name)
    last_commit = info.last_commit
    if last_commit is not None and last_commit.tzinfo is None:
        last_commit = last_commit.replace(tzinfo=UTC)
    return TableState(
        version=info.version,
        published=info.published,
        rows=info.rows,
        size_bytes=info.size_bytes,
        files=info.files,
        last_commit=last_commit,
        writer=graph.writers.get(name),
        quality=graph.quality.get(name, []),
        upstream=sorted(graph.inputs.get(name, ())),
        downstream=sorted(graph.outputs(name)),
    )
