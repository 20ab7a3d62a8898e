"""The lake's column lineage graph: every SQL step's plan analysed, and the reference snapshots, which
copy their PostgreSQL table's columns.

Analysing the plans takes ~0.4 s, too much to pay on every pipeline run (lineage must not slow a job
noticeably), so the graph is kept per process and, with a ``cache_dir``, on disk under a hash of
everything it is derived from (the plans' SQL, the input schemas, sqlglot's version): a change to any
of them is a new file, never a stale graph.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from importlib import metadata
from pathlib import Path

import pyarrow as pa

from mdslab.lakehouse import TableRegistry
from mdslab.workloads import reference
from mdslab.workloads.lineage.columns import ColumnSource, TableLineage, plan_lineage
from mdslab.workloads.pipeline.dialect import DUCKDB
from mdslab.workloads.pipeline.plan import SqlPlan
from mdslab.workloads.pipeline.steps import PLANS

log = logging.getLogger(__name__)
Schemas = tuple[tuple[str, pa.Schema], ...]


def pipeline_lineage(registry: TableRegistry, cache_dir: Path | None = None) -> dict[str, TableLineage]:
    """Output table -> column -> sources, for every table the pipeline builds."""
    return dict(_graph(tuple((spec.name, spec.schema) for spec in registry), cache_dir))


@functools.lru_cache(maxsize=8)
def _graph(schemas: Schemas, cache_dir: Path | None) -> tuple[tuple[str, TableLineage], ...]:
    plans = [factory(DUCKDB) for factory in PLANS.values()]
    path = None if cache_dir is None else cache_dir / f"lineage-{_fingerprint(plans, schemas)}.json"
    if path is not None and path.exists():
        try:
            return tuple(_decoded(json.loads(path.read_text())).items())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("lineage: ignoring the unreadable cache %s (%s)", path, exc)
    graph = _analysed(plans, dict(schemas))
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial")
            partial.write_text(json.dumps(_encoded(graph)))
            partial.replace(path)
        except OSError as exc:
            log.warning("lineage: could not cache the column lineage in %s (%s)", path, exc)
    return tuple(graph.items())


def _analysed(plans: list[SqlPlan], schema_of: dict[str, pa.Schema]) -> dict[str, TableLineage]:
    graph: dict[str, TableLineage] = {}
    for table in reference.REFERENCE_TABLES:
        snapshot = f"bronze.{table.name}"
        source = reference.source_name(table)
        graph[snapshot] = {
            column: (ColumnSource(source, column, "DIRECT", "IDENTITY"),) if column in table.columns else ()
            for column in schema_of[snapshot].names
        }
    for plan in plans:
        graph.update(plan_lineage(plan, {table: schema_of[table] for table in plan.inputs.values()}))
    return graph


def _fingerprint(plans: list[SqlPlan], schemas: Schemas) -> str:
    digest = hashlib.sha256(metadata.version("sqlglot").encode())
    for plan in plans:
        digest.update(repr((sorted(plan.inputs.items()), plan.stages, sorted(plan.outputs.items()))).encode())
    for name, schema in schemas:
        digest.update(f"{name}:{schema}".encode())
    digest.update(repr([(t.name, t.columns) for t in reference.REFERENCE_TABLES]).encode())
    return digest.hexdigest()[:20]


def _encoded(graph: dict[str, TableLineage]) -> dict[str, dict[str, list[list[str]]]]:
    return {
        table: {
            column: [[s.table, s.column, s.type, s.subtype] for s in sources] for column, sources in columns.items()
        }
        for table, columns in graph.items()
    }


def _decoded(data: dict[str, dict[str, list[list[str]]]]) -> dict[str, TableLineage]:
    return {
        table: {
            column: tuple(ColumnSource(t, c, "DIRECT" if k == "DIRECT" else "INDIRECT", s) for t, c, k, s in sources)
            for column, sources in columns.items()
        }
        for table, columns in data.items()
    }
