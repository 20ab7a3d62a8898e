"""OpenLineage run events, built with openlineage-python's typed ``event_v2`` / ``facet_v2`` classes.

A run is reported by a START and then a COMPLETE or a FAIL sharing one run id; a run started by another
(a pipeline step by its pipeline run, a pipeline run by an Airflow task or a Prefect flow run) names
it in the ``parent`` facet, and the root of the chain in ``parent.root``.
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import ParamSpec

import pyarrow as pa
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    JobFacet,
    RunFacet,
    column_lineage_dataset,
    dataset_version_dataset,
    documentation_dataset,
    error_message_run,
    ownership_dataset,
    parent_run,
    schema_dataset,
    tags_dataset,
)
from openlineage.client.uuid import generate_new_uuid

from mdslab.lakehouse import TableSpec
from mdslab.workloads.lineage.classification import DECLARED, Tags
from mdslab.workloads.lineage.columns import TableLineage
from mdslab.workloads.lineage.naming import Dataset

PRODUCER = f"urn:mdslab:{metadata.version('mdslab')}"
log = logging.getLogger(__name__)
P = ParamSpec("P")


def never_raises(report: Callable[P, None]) -> Callable[P, None]:
    """Reporting lineage must never fail the run it reports: a problem building an event is a warning."""

    @functools.wraps(report)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            report(*args, **kwargs)
        except Exception as exc:
            log.warning("lineage: %s could not be reported (%s); the run goes on", report.__name__, exc)

    return guarded


@dataclass(frozen=True)
class RunRef:
    """A run another run can name as its parent (and the root of its chain)."""

    namespace: str
    job: str
    run_id: str
    root: RunRef | None = None

    def facet(self) -> parent_run.ParentRunFacet:
        root = self.root or self
        return parent_run.ParentRunFacet(
            run=parent_run.Run(runId=self.run_id),
            job=parent_run.Job(namespace=self.namespace, name=self.job),
            root=parent_run.Root(
                run=parent_run.RootRun(runId=root.run_id),
                job=parent_run.RootJob(namespace=root.namespace, name=root.job),
            ),
        )


_ORCHESTRATOR_RUN: ContextVar[RunRef | None] = ContextVar("mdslab_lineage_parent", default=None)


@contextmanager
def started_by(parent: RunRef | None) -> Iterator[None]:
    """Inside the block, every run reported without an explicit parent is a child of ``parent`` (the
    Airflow task or Prefect task run that is running it): orchestrators set it once around a task, and
    the pipeline, training, scoring, indexing and consumer runs it starts name it, however deep."""
    token = _ORCHESTRATOR_RUN.set(parent)
    try:
        yield
    finally:
        _ORCHESTRATOR_RUN.reset(token)


@dataclass
class JobRun:
    """One run being reported: the job, the run id its events share, its parent (by default the
    orchestrator's run the job was started in, see :func:`started_by`), when it started."""

    namespace: str
    job: str
    parent: RunRef | None = None
    run_id: str = field(default_factory=lambda: str(generate_new_uuid()))
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if self.parent is None:
            self.parent = _ORCHESTRATOR_RUN.get()

    def ref(self) -> RunRef:
        """This run as the parent of the runs it starts (the root carried down the chain)."""
        root = self.parent.root or self.parent if self.parent is not None else None
        return RunRef(self.namespace, self.job, self.run_id, root)

    def event(
        self,
        state: RunState,
        *,
        inputs: list[InputDataset] | None = None,
        outputs: list[OutputDataset] | None = None,
        job_facets: Mapping[str, JobFacet] | None = None,
        run_facets: Mapping[str, RunFacet] | None = None,
        at: datetime | None = None,
    ) -> RunEvent:
        facets: dict[str, RunFacet] = dict(run_facets or {})
        if self.parent is not None:
            facets["parent"] = self.parent.facet()
        when = at or (self.started_at if state is RunState.START else datetime.now(UTC))
        return RunEvent(
            eventType=state,
            eventTime=when.isoformat(),
            run=Run(runId=self.run_id, facets=facets),
            job=Job(namespace=self.namespace, name=self.job, facets=dict(job_facets or {})),
            producer=PRODUCER,
            inputs=inputs or [],
            outputs=outputs or [],
        )


def error_facet(error: BaseException) -> error_message_run.ErrorMessageRunFacet:
    """The error as a person reads it (its one-line message) with the stack for whoever debugs it."""
    stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    return error_message_run.ErrorMessageRunFacet(message=message, programmingLanguage="PYTHON", stackTrace=stack)


def schema_facet(schema: pa.Schema, docs: Mapping[str, str]) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(
                name=f.name, type=str(f.type), description=docs.get(f.name), ordinal_position=i + 1
            )
            for i, f in enumerate(schema)
        ]
    )


def table_facets(spec: TableSpec, version: int | None, tags: Mapping[str, Tags] | None = None) -> dict[str, object]:
    """What a consumer's catalog shows of a lake table: schema with column docs, description, owner,
    the Delta version read or written, and each column's classification (declared or inherited)."""
    facets: dict[str, object] = {
        "schema": schema_facet(spec.schema, spec.column_docs),
        "documentation": documentation_dataset.DocumentationDatasetFacet(description=spec.description),
        "ownership": ownership_dataset.OwnershipDatasetFacet(
            owners=[ownership_dataset.Owner(name=f"team:{spec.owner}", type="MAINTAINER")]
        ),
    }
    if tags:
        facets["tags"] = tags_dataset.TagsDatasetFacet(
            tags=[
                tags_dataset.TagsDatasetFacetFields(
                    key="classification",
                    value=tag,
                    source="CONTRACT" if origin == DECLARED else "LINEAGE",
                    field=column,
                )
                for column, column_tags in tags.items()
                for tag, origin in column_tags.items()
            ]
        )
    if version is not None:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=str(version))
    return facets


# an output column -> the (dataset, column, DIRECT/INDIRECT, subtype) it is computed from
ColumnSources = Mapping[str, Iterable[tuple[Dataset, str, str, str]]]


def column_lineage(columns: ColumnSources) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    return column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            column: column_lineage_dataset.Fields(
                inputFields=[
                    column_lineage_dataset.InputField(
                        namespace=dataset[0],
                        name=dataset[1],
                        field=field_name,
                        transformations=[column_lineage_dataset.Transformation(type=kind, subtype=subtype)],
                    )
                    for dataset, field_name, kind, subtype in sources
                ]
            )
            for column, sources in columns.items()
        }
    )


def column_lineage_facet(
    lineage: TableLineage, dataset_of: Mapping[str, Dataset]
) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    """``lineage`` (output column -> input columns) with each input table named as a dataset."""
    return column_lineage(
        {
            column: [(dataset_of[s.table], s.column, s.type, s.subtype) for s in sources if s.table in dataset_of]
            for column, sources in lineage.items()
        }
    )
