"""What the lineage store knows, as a graph: datasets and columns, each linked to what it was built from
by the latest run of the job that writes it (unless that run failed), whoever sent the events (the lab's
own jobs, or any OpenLineage producer pointed at ``POST /api/v1/lineage``).

Datasets are shown by the lab's names where it has one (``gold.daily_spend``,
``postgres:reference.customers``), else as ``<namespace>/<name>`` (OpenLineage's identity).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mdslab.lakehouse import TableRegistry
from mdslab.settings import PostgresSettings, Settings
from mdslab.workloads import reference
from mdslab.workloads.ingestion.events import EVENT_TYPES, Topics
from mdslab.workloads.lineage import naming
from mdslab.workloads.lineage.columns import ColumnSource, EdgeType, TableLineage
from mdslab.workloads.lineage.store import latest_per_job

Names = Mapping[naming.Dataset, str]  # OpenLineage dataset -> the name the lab shows


def lab_names(registry: TableRegistry, settings: Settings) -> dict[naming.Dataset, str]:
    """The lab's name of each dataset its jobs read or write: lake tables, the reference tables they are
    loaded from, the Kafka topics (``kafka:<topic>``) and the ingestion routes (``api:POST <path>``)."""
    names = {naming.delta_table(spec, settings.lake): spec.name for spec in registry}
    for table in reference.REFERENCE_TABLES:
        names[naming.postgres_table(settings.postgres, reference.SCHEMA, table.name)] = reference.source_name(table)
    topics = Topics(settings.kafka.topic_prefix)
    for topic in (*topics.events, topics.dead_letters):
        names[naming.kafka_topic(settings.kafka, topic)] = f"kafka:{topic}"
    for event_type in EVENT_TYPES:
        route = naming.api_route(settings.api, event_type.name)
        names[route] = f"api:POST {route[1]}"
    return names


def display_name(names: Names, namespace: str, name: str) -> str:
    """The lab's name; else short forms of a registered model (``mlflow:<name>``) and a PostgreSQL table
    (``postgres:<database>.<schema>.<table>``, e.g. the vector index); else ``<namespace>/<name>``."""
    if (namespace, name) in names:
        return names[(namespace, name)]
    if namespace.startswith("mlflow://") and name.startswith("models/"):
        return f"mlflow:{name.removeprefix('models/')}"
    if namespace.startswith("postgres://"):
        return f"postgres:{name}"
    return f"{namespace}/{name}"


@dataclass(frozen=True)
class Writer:
    """The latest run that reported a version of a dataset it wrote."""

    job: str
    run_id: str
    at: datetime
    version: str | None
    rows: int | None


@dataclass(frozen=True)
class Assertion:
    """One data-quality check of a dataset, as its last auditing run reported it."""

    check: str
    success: bool
    detail: str
    job: str
    run_id: str
    at: datetime


@dataclass
class RecordedLineage:
    """The store's lineage graph (see the module docstring)."""

    columns: dict[str, TableLineage] = field(default_factory=dict)  # dataset -> column -> its sources
    inputs: dict[str, set[str]] = field(default_factory=dict)  # dataset -> the datasets it is built from
    schemas: dict[str, list[str]] = field(default_factory=dict)  # dataset -> its columns, as last reported
    writers: dict[str, Writer] = field(default_factory=dict)
    quality: dict[str, list[Assertion]] = field(default_factory=dict)

    @property
    def datasets(self) -> set[str]:
        found = set(self.inputs) | set(self.schemas) | set(self.columns)
        return found | {source for sources in self.inputs.values() for source in sources}

    def outputs(self, dataset: str) -> set[str]:
        """The datasets built from ``dataset`` (its direct downstream)."""
        return {out for out, sources in self.inputs.items() if dataset in sources}

    def column_names(self, dataset: str) -> list[str]:
        """Its columns as reported, else those seen in column lineage (as an output or an input)."""
        known = list(self.schemas.get(dataset, []))
        seen = set(known)
        for column in (
            *self.columns.get(dataset, {}),
            *(s.column for cols in self.columns.values() for srcs in cols.values() for s in srcs if s.table == dataset),
        ):
            if column not in seen:
                seen.add(column)
                known.append(column)
        return known


def load_lineage(pg: PostgresSettings, names: Names) -> RecordedLineage:
    """The graph from the store (one query: the last event of each type of every job)."""
    return lineage_of(latest_per_job(pg), names)


def lineage_of(events: Iterable[dict[str, Any]], names: Names) -> RecordedLineage:
    """The graph of these events, applied oldest first: a dataset's lineage is what the latest event
    naming it as an output says, unless that run failed (a START already says what a run will build,
    so a long-lived job's lineage is known while it runs); its last writer, the latest run that
    reported a version of it (COMPLETE, or RUNNING for a long-lived job); its quality, the assertions
    of the latest run that audited it, failed or not."""
    graph = RecordedLineage()
    for event in sorted(events, key=lambda e: datetime.fromisoformat(e["eventTime"])):
        at = datetime.fromisoformat(event["eventTime"])
        job, run_id = event["job"]["name"], event["run"]["runId"]
        inputs = [display_name(names, d["namespace"], d["name"]) for d in event.get("inputs", [])]
        for name, dataset in zip(inputs, event.get("inputs", []), strict=True):
            _note_schema(graph, name, dataset)
            assertions = (dataset.get("inputFacets") or {}).get("dataQualityAssertions", {}).get("assertions")
            if assertions:
                graph.quality[name] = [
                    Assertion(a["assertion"], bool(a["success"]), a.get("description") or "", job, run_id, at)
                    for a in assertions
                ]
        if event.get("eventType") in ("FAIL", "ABORT"):
            continue
        for dataset in event.get("outputs", []):
            name = display_name(names, dataset["namespace"], dataset["name"])
            _note_schema(graph, name, dataset)
            facets = dataset.get("facets") or {}
            fields = facets.get("columnLineage", {}).get("fields", {})
            if name not in inputs:  # rewritten in place (compaction): where its data comes from is unchanged
                graph.inputs[name] = set(inputs)
                if fields:
                    graph.columns[name] = {column: _sources(spec, names) for column, spec in fields.items()}
                if fields and len(event["outputs"]) > 1:
                    # a job with several outputs (the consumer: a topic per table) names its inputs for all
                    # of them; column lineage says which input each output comes from
                    graph.inputs[name] = {s.table for sources in graph.columns[name].values() for s in sources}
            version = facets.get("version", {}).get("datasetVersion")
            if event.get("eventType") in ("COMPLETE", "RUNNING") and version is not None:
                stats = (dataset.get("outputFacets") or {}).get("outputStatistics", {})
                graph.writers[name] = Writer(job, run_id, at, version, stats.get("rowCount"))
    return graph


def _note_schema(graph: RecordedLineage, name: str, dataset: dict[str, Any]) -> None:
    fields = (dataset.get("facets") or {}).get("schema", {}).get("fields")
    if fields:
        graph.schemas[name] = [f["name"] for f in fields]


def _sources(spec: dict[str, Any], names: Names) -> tuple[ColumnSource, ...]:
    sources = set()
    for source in spec.get("inputFields", []):
        table = display_name(names, source["namespace"], source["name"])
        for transformation in source.get("transformations") or [{}]:
            kind: EdgeType = "INDIRECT" if transformation.get("type") == "INDIRECT" else "DIRECT"
            sources.add(ColumnSource(table, source["field"], kind, transformation.get("subtype") or ""))
    return tuple(sorted(sources))
