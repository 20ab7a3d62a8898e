"""A pipeline run and its steps as OpenLineage runs: the pipeline run is the parent of every step run
that builds (a step already up to date is not a run), and is itself the child of whatever started it
(an Airflow task, a Prefect flow run). Steps report their inputs and outputs at the Delta versions
read and written, the rows written, the SQL they ran, the engine, and the column lineage of each output.
"""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path

from openlineage.client.event_v2 import InputDataset, OutputDataset, RunState
from openlineage.client.facet_v2 import (
    JobFacet,
    RunFacet,
    data_quality_assertions_dataset,
    documentation_job,
    error_message_run,
    job_type_job,
    processing_engine_run,
    sql_job,
)

from mdslab.lakehouse import Lakehouse
from mdslab.settings import PostgresSettings, Settings
from mdslab.workloads.lineage import naming
from mdslab.workloads.lineage.classification import Tags, classify
from mdslab.workloads.lineage.columns import TableLineage
from mdslab.workloads.lineage.delivery import LineageEmitter, lineage_emitter
from mdslab.workloads.lineage.events import (
    JobRun,
    RunRef,
    column_lineage_facet,
    error_facet,
    never_raises,
    table_facets,
)
from mdslab.workloads.lineage.graph import pipeline_lineage
from mdslab.workloads.lineage.job_runs import output_statistics
from mdslab.workloads.pipeline.dialect import DUCKDB, SPARK
from mdslab.workloads.pipeline.step_runtime import Step, StepResult, Versions
from mdslab.workloads.pipeline.steps import PLANS
from mdslab.workloads.quality import QualityReport

log = logging.getLogger(__name__)

PIPELINE_JOB = "mdslab.pipeline"
GATE_JOB = "mdslab.quality_gate"
POSTGRES = "postgres:"


class PipelineLineage:
    """Emits the runs of one pipeline run (see the module docstring); never raises into the run."""

    def __init__(
        self,
        emitter: LineageEmitter,
        lake: Lakehouse,
        pg: PostgresSettings,
        *,
        namespace: str,
        parent: RunRef | None,
        cache_dir: Path | None = None,
    ) -> None:
        self.emitter = emitter
        self.lake = lake
        self.pg = pg
        self.cache_dir = cache_dir
        self.namespace = namespace
        self.run = JobRun(namespace, PIPELINE_JOB, parent)
        self._steps: dict[str, JobRun] = {}
        self._graph: dict[str, TableLineage] | None = None
        self._classes: dict[str, dict[str, Tags]] | None = None
        self._started = False

    @classmethod
    def of(cls, settings: Settings, lake: Lakehouse, parent: RunRef | None = None) -> PipelineLineage:
        """The reporter of a pipeline run on ``lake``, sending where ``MDSLAB_LINEAGE__*`` says."""
        return cls(
            lineage_emitter(settings),
            lake,
            settings.postgres,
            namespace=settings.lineage.namespace,
            parent=parent,
            cache_dir=settings.state_dir / "cache",
        )

    def _start(self) -> None:
        """The pipeline run's START, sent with its first step that builds (with its real start time): a
        run that finds everything up to date, most ticks of ``--watch``, is not reported at all."""
        if not self._started:
            self._started = True
            self.emitter.emit(self.run.event(RunState.START))

    @never_raises
    def finished(self, error: BaseException | None = None) -> None:
        try:
            if error is not None:
                self._start()
                self.emitter.emit(self.run.event(RunState.FAIL, run_facets={"errorMessage": error_facet(error)}))
            elif self._started:
                self.emitter.emit(self.run.event(RunState.COMPLETE))
        finally:
            self.emitter.close()

    @never_raises
    def step_started(self, step: Step, versions: Versions) -> None:
        self._start()
        run = self._steps[step.name] = JobRun(self.namespace, f"{PIPELINE_JOB}.{step.name}", self.run.ref())
        self.emitter.emit(
            run.event(
                RunState.START,
                inputs=self._inputs(versions),
                outputs=[self._output(name, None, None) for name in step.outputs],
                job_facets=self._job_facets(step, None),
            )
        )

    @never_raises
    def step_finished(self, step: Step, result: StepResult) -> None:
        run = self._steps.pop(step.name, None)
        if run is None:  # up to date: nothing was run
            return
        self.emitter.emit(
            run.event(
                RunState.COMPLETE,
                inputs=self._inputs(result.inputs),
                outputs=[
                    self._output(name, result.outputs.get(name), result.rows_out.get(name)) for name in step.outputs
                ],
                job_facets=self._job_facets(step, result.mode),
                run_facets=_engine(step, result.mode),
            )
        )

    @never_raises
    def step_failed(self, step: Step, error: BaseException) -> None:
        run = self._steps.pop(step.name, None)
        if run is None:  # it failed before it began building (an input missing): still a run, and it failed
            self._start()
            run = JobRun(self.namespace, f"{PIPELINE_JOB}.{step.name}", self.run.ref())
            self.emitter.emit(run.event(RunState.START, job_facets=self._job_facets(step, None)))
        self.emitter.emit(
            run.event(
                RunState.FAIL, job_facets=self._job_facets(step, None), run_facets={"errorMessage": error_facet(error)}
            )
        )

    @never_raises
    def gate(self, report: QualityReport) -> None:
        """The quality gate as a run of its own under the pipeline run."""
        self._start()
        emit_gate(self.emitter, self.lake, report, JobRun(self.namespace, GATE_JOB, self.run.ref()))

    def _dataset(self, name: str) -> naming.Dataset:
        if name.startswith(POSTGRES):
            schema, _, table = name.removeprefix(POSTGRES).partition(".")
            return naming.postgres_table(self.pg, schema, table)
        return naming.lake_table(self.lake, name)

    def _inputs(self, versions: Versions) -> list[InputDataset]:
        inputs = []
        for name, version in versions.items():
            namespace, dataset = self._dataset(name)
            facets = {} if name.startswith(POSTGRES) else table_facets(self.lake.spec(name), int(version))
            inputs.append(InputDataset(namespace=namespace, name=dataset, facets=facets))  # type: ignore[arg-type]
        return inputs

    def _output(self, name: str, version: int | None, rows: int | None) -> OutputDataset:
        namespace, dataset = self._dataset(name)
        facets = table_facets(self.lake.spec(name), version, self._tags().get(name))
        lineage = self._lineage().get(name)
        if lineage is not None:
            sources = {source.table for sources in lineage.values() for source in sources}
            facets["columnLineage"] = column_lineage_facet(lineage, {t: self._dataset(t) for t in sources})
        return OutputDataset(namespace=namespace, name=dataset, facets=facets, outputFacets=output_statistics(rows))  # type: ignore[arg-type]

    def _lineage(self) -> dict[str, TableLineage]:
        if self._graph is None:
            self._graph = pipeline_lineage(self.lake.registry, self.cache_dir)
        return self._graph

    def _tags(self) -> dict[str, dict[str, Tags]]:
        if self._classes is None:
            self._classes = classify(self.lake.registry, self._lineage())
        return self._classes

    def _job_facets(self, step: Step, mode: str | None) -> dict[str, JobFacet]:
        facets: dict[str, JobFacet] = {
            "documentation": documentation_job.DocumentationJobFacet(description=step.description),
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration=_integration(step, mode), jobType="TASK"
            ),
        }
        factory = PLANS.get(step.name)
        if factory is not None:
            dialect = DUCKDB if mode == "incremental" else SPARK
            plan = factory(dialect)
            stages = "".join(f"-- stage {name}\n{sql};\n" for name, sql in plan.stages)
            outputs = "".join(f"-- output {table}\n{sql};\n" for table, sql in plan.outputs.items())
            facets["sql"] = sql_job.SQLJobFacet(query=stages + outputs, dialect=dialect.name)
        return facets


@never_raises
def emit_gate(emitter: LineageEmitter, lake: Lakehouse, report: QualityReport, run: JobRun) -> None:
    """A gate's run: every table it audited, at the version audited, with its checks as data-quality
    assertions; COMPLETE when they passed (and it published), else FAIL with the failed checks."""
    emitter.emit(run.event(RunState.START))
    facets: dict[str, RunFacet] = {}
    if not report.passed:
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=report.reason(), programmingLanguage="PYTHON"
        )
    state = RunState.COMPLETE if report.passed else RunState.FAIL
    emitter.emit(run.event(state, inputs=audited_inputs(lake, report), run_facets=facets))


def audited_inputs(lake: Lakehouse, report: QualityReport) -> list[InputDataset]:
    """The tables a gate audited at the versions it read, each with its checks as assertions."""
    inputs = []
    for table, version in sorted(report.audited.items()):
        namespace, name = naming.lake_table(lake, table)
        assertions = [
            data_quality_assertions_dataset.Assertion(
                assertion=check.name, success=check.passed, description=check.detail, severity="error"
            )
            for check in report.checks
            if check.table == table
        ]
        quality = {
            "dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(assertions)
        }
        inputs.append(
            InputDataset(
                namespace=namespace,
                name=name,
                facets=table_facets(lake.spec(table), version),  # type: ignore[arg-type]
                inputFacets=quality if assertions else {},  # type: ignore[arg-type]
            )
        )
    return inputs


def _integration(step: Step, mode: str | None) -> str:
    if step.name not in PLANS:
        return "MDSLAB"  # the reference snapshots: PostgreSQL read in Python
    return "DUCKDB" if mode == "incremental" else "SPARK"


def _engine(step: Step, mode: str | None) -> dict[str, RunFacet]:
    integration = _integration(step, mode)
    package = {"DUCKDB": "duckdb", "SPARK": "pyspark", "MDSLAB": "mdslab"}[integration]
    facet = processing_engine_run.ProcessingEngineRunFacet(
        version=metadata.version(package),
        name=integration.lower(),
        openlineageAdapterVersion=metadata.version("openlineage-python"),
    )
    return {"processing_engine": facet}
