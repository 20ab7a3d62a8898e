"""The ingestion path as OpenLineage runs, so a column's lineage reaches back to how it arrived: the
ingestion API (a route's request body, validated against its contract, becomes a Kafka message) and the
stream consumer (a message becomes a bronze row, exactly once).

Both are long-lived: a run is one serving of the API or one consumer run, reported by a START that
already names its inputs, outputs and column lineage (so the lineage is known while it runs), a
RUNNING at most once a minute for the consumer (the bronze versions written so far), and a COMPLETE
or FAIL when it stops. There is no SQL here, so the column lineage is the code's contract written out:
which message part each bronze column is copied (IDENTITY) or parsed (TRANSFORMATION) from.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from openlineage.client.event_v2 import InputDataset, OutputDataset, RunState
from openlineage.client.facet_v2 import (
    RunFacet,
    schema_dataset,
)

from mdslab.lakehouse import Lakehouse
from mdslab.settings import KafkaSettings, Settings
from mdslab.workloads.ingestion.events import DEAD_LETTER_TABLE, EVENT_TYPES, Topics
from mdslab.workloads.lineage import naming
from mdslab.workloads.lineage.delivery import LineageEmitter, lineage_emitter
from mdslab.workloads.lineage.events import (
    ColumnSources,
    JobRun,
    error_facet,
    never_raises,
)
from mdslab.workloads.lineage.job_runs import RunReport, job_facets, lake_output, other_output, reported_run

API_JOB = "mdslab.api.ingest"
STREAM_JOB = "mdslab.stream_consumer"
RUNNING_EVERY_S = 60.0

MESSAGE_FIELDS = ("key", "value", "headers", "partition", "offset", "timestamp")
# bronze column -> (message part, how): written out from the consumer's code (no SQL to derive it from)
_BRONZE_FROM_MESSAGE = {
    "event_id": ("value", "TRANSFORMATION"),
    "payload": ("value", "IDENTITY"),
    "contract_version": ("headers", "TRANSFORMATION"),
    "kafka_partition": ("partition", "IDENTITY"),
    "kafka_offset": ("offset", "IDENTITY"),
    "kafka_timestamp": ("timestamp", "IDENTITY"),
}
_DEAD_LETTER_FROM_MESSAGE = {
    "kafka_partition": ("partition", "IDENTITY"),
    "kafka_offset": ("offset", "IDENTITY"),
    "kafka_timestamp": ("timestamp", "IDENTITY"),
    "kafka_key": ("key", "IDENTITY"),
    "payload": ("value", "IDENTITY"),
    "contract_version": ("headers", "TRANSFORMATION"),
}
# Kafka message part <- (request part, how): the API validates the body and publishes it
_MESSAGE_FROM_REQUEST = {"value": ("body", "TRANSFORMATION"), "key": ("body", "TRANSFORMATION")}


def _from(mapping: dict[str, tuple[str, str]], *sources: naming.Dataset) -> ColumnSources:
    return {column: [(source, part, "DIRECT", how) for source in sources] for column, (part, how) in mapping.items()}


def _message_schema() -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=part, type="bytes") for part in MESSAGE_FIELDS]
    )


def _topic(
    kafka: KafkaSettings, topic: str, facets: dict[str, object] | None = None
) -> tuple[str, str, dict[str, object]]:
    namespace, name = naming.kafka_topic(kafka, topic)
    return namespace, name, {"schema": _message_schema(), **(facets or {})}


@contextmanager
def api_ingest_run(settings: Settings) -> Iterator[None]:
    """One serving of the ingestion API as a run (START now, COMPLETE or FAIL when the block ends)."""
    topics = Topics(settings.kafka.topic_prefix)
    description = "Validates events against their contracts and publishes them to Kafka (202 once stored)."
    known = RunReport()
    for event_type in EVENT_TYPES:
        route = naming.api_route(settings.api, event_type.name)
        known.inputs.append(InputDataset(namespace=route[0], name=route[1]))
        known.outputs.append(
            other_output(
                naming.kafka_topic(settings.kafka, topics.of(event_type)),
                fields=MESSAGE_FIELDS,
                columns=_from(_MESSAGE_FROM_REQUEST, route),
            )
        )
    with reported_run(settings, API_JOB, description, processing="STREAMING", known=known):
        yield


class StreamLineage:
    """One stream consumer run (see the module docstring); never raises into the consumer."""

    def __init__(self, settings: Settings, lake: Lakehouse, emitter: LineageEmitter | None = None) -> None:
        self.settings = settings
        self.lake = lake
        self.emitter = emitter or lineage_emitter(settings)
        self.topics = Topics(settings.kafka.topic_prefix)
        self.run = JobRun(settings.lineage.namespace, STREAM_JOB)
        self._job_facets = job_facets(
            "Consumes the event topics into bronze, exactly once per Kafka offset.", "STREAMING"
        )
        self._last_running = time.monotonic()

    def _inputs(self) -> list[InputDataset]:
        return [
            InputDataset(namespace=ns, name=name, facets=facets)  # type: ignore[arg-type]
            for ns, name, facets in (_topic(self.settings.kafka, topic) for topic in self.topics.events)
        ]

    def _outputs(self, rows: dict[str, int] | None) -> list[OutputDataset]:
        outputs = []
        targets = [(e.bronze_table, _BRONZE_FROM_MESSAGE, [self.topics.of(e)]) for e in EVENT_TYPES]
        targets.append((DEAD_LETTER_TABLE, _DEAD_LETTER_FROM_MESSAGE, self.topics.events))
        for table, mapping, topics in targets:
            sources = [naming.kafka_topic(self.settings.kafka, topic) for topic in topics]
            version, written = (None, None) if rows is None else (self.lake.version(table), rows.get(table, 0))
            outputs.append(lake_output(self.lake, table, version, rows=written, columns=_from(mapping, *sources)))
        return outputs

    def started(self) -> None:
        self._report(RunState.START, None)

    def committed(self, rows: dict[str, int]) -> None:
        """After a batch is committed: a RUNNING event, at most once a minute."""
        if time.monotonic() - self._last_running >= RUNNING_EVERY_S:
            self._last_running = time.monotonic()
            self._report(RunState.RUNNING, rows)

    def finished(self, rows: dict[str, int], error: BaseException | None = None) -> None:
        try:
            if error is None:
                self._report(RunState.COMPLETE, rows)
            else:
                self._report(RunState.FAIL, rows, {"errorMessage": error_facet(error)})
        finally:
            self.emitter.close()

    @never_raises
    def _report(
        self, state: RunState, rows: dict[str, int] | None, run_facets: dict[str, RunFacet] | None = None
    ) -> None:
        event = self.run.event(
            state,
            inputs=self._inputs(),
            outputs=self._outputs(rows),
            job_facets=self._job_facets,
            run_facets=run_facets,
        )
        self.emitter.emit(event)
