"""A job run reported as OpenLineage events with one ``with`` block: START when it begins, COMPLETE with
the datasets the job says it read and wrote, or FAIL with the error. Used by the jobs that are not SQL
steps (training, batch scoring, the RAG indexer, table maintenance, the ingestion API); reporting never
fails the job (see :func:`~mdslab.workloads.lineage.events.never_raises`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from openlineage.client.event_v2 import InputDataset, OutputDataset, RunState
from openlineage.client.facet_v2 import (
    JobFacet,
    dataset_version_dataset,
    documentation_job,
    job_type_job,
    output_statistics_output_dataset,
    schema_dataset,
)

from mdslab.lakehouse import Lakehouse, TableSpec
from mdslab.settings import LakeSettings, Settings
from mdslab.workloads.lineage import naming
from mdslab.workloads.lineage.delivery import LineageEmitter, lineage_emitter
from mdslab.workloads.lineage.events import (
    ColumnSources,
    JobRun,
    RunRef,
    column_lineage,
    error_facet,
    never_raises,
    table_facets,
)


@dataclass
class RunReport:
    """What the job says it read and wrote, filled in as it goes (reported with COMPLETE or FAIL)."""

    inputs: list[InputDataset] = field(default_factory=list)
    outputs: list[OutputDataset] = field(default_factory=list)


@contextmanager
def reported_run(
    settings: Settings,
    job: str,
    description: str,
    *,
    parent: RunRef | None = None,
    processing: str = "BATCH",
    known: RunReport | None = None,
    run_id: str | None = None,
    emitter: LineageEmitter | None = None,
) -> Iterator[RunReport]:
    """The block as one run of ``job`` (see the module docstring); ``known``: the datasets known before
    it starts (its START names them: a long-lived job's lineage is then known while it runs); ``run_id``:
    the id another system already gave the run (a Prefect flow run's), else a new one."""
    emitter = emitter or lineage_emitter(settings)
    run = JobRun(settings.lineage.namespace, job, parent)
    if run_id is not None:
        run.run_id = run_id
    facets = job_facets(description, processing)
    report = known or RunReport()
    _emit(emitter, run, RunState.START, report, facets, None)
    try:
        yield report
    except BaseException as exc:
        _emit(emitter, run, RunState.FAIL, report, facets, exc)
        raise
    else:
        _emit(emitter, run, RunState.COMPLETE, report, facets, None)
    finally:
        emitter.close()


def job_facets(description: str, processing: str) -> dict[str, JobFacet]:
    return {
        "documentation": documentation_job.DocumentationJobFacet(description=description),
        "jobType": job_type_job.JobTypeJobFacet(processingType=processing, integration="MDSLAB", jobType="JOB"),
    }


@never_raises
def _emit(
    emitter: LineageEmitter,
    run: JobRun,
    state: RunState,
    report: RunReport,
    job_facets: dict[str, JobFacet],
    error: BaseException | None,
) -> None:
    facets = {} if error is None else {"errorMessage": error_facet(error)}
    emitter.emit(
        run.event(state, inputs=report.inputs, outputs=report.outputs, job_facets=job_facets, run_facets=facets)
    )


def lake_input(lake: Lakehouse, table: str, version: int | None) -> InputDataset:
    return delta_input(lake.spec(table), lake.lake, version)


def delta_input(spec: TableSpec, lake: LakeSettings, version: int | None) -> InputDataset:
    """A lake table read at ``version``, for a job that has its spec but no :class:`Lakehouse` at hand."""
    namespace, name = naming.delta_table(spec, lake)
    return InputDataset(namespace=namespace, name=name, facets=table_facets(spec, version))  # type: ignore[arg-type]


def lake_output(
    lake: Lakehouse, table: str, version: int | None, *, rows: int | None = None, columns: ColumnSources | None = None
) -> OutputDataset:
    namespace, name = naming.lake_table(lake, table)
    facets = table_facets(lake.spec(table), version)
    if columns:
        facets["columnLineage"] = column_lineage(columns)
    return OutputDataset(namespace=namespace, name=name, facets=facets, outputFacets=output_statistics(rows))  # type: ignore[arg-type]


def other_input(dataset: naming.Dataset, version: str | None = None) -> InputDataset:
    """A dataset outside the lake read at ``version`` (a registered model's version)."""
    facets = {} if version is None else {"version": dataset_version_dataset.DatasetVersionDatasetFacet(version)}
    return InputDataset(namespace=dataset[0], name=dataset[1], facets=facets)  # type: ignore[arg-type]


def other_output(
    dataset: naming.Dataset,
    *,
    version: str | None = None,
    rows: int | None = None,
    fields: Iterable[str] = (),
    columns: ColumnSources | None = None,
) -> OutputDataset:
    """A dataset outside the lake (a registered model, the vector index, a Kafka topic)."""
    facets: dict[str, object] = {}
    names = list(fields)
    if names:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name=f) for f in names]
        )
    if version is not None:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=version)
    if columns:
        facets["columnLineage"] = column_lineage(columns)
    return OutputDataset(namespace=dataset[0], name=dataset[1], facets=facets, outputFacets=output_statistics(rows))  # type: ignore[arg-type]


def output_statistics(rows: int | None) -> dict[str, object]:
    """The output facets of a dataset ``rows`` were written to (none when unknown)."""
    if rows is None:
        return {}
    return {"outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=rows)}
