"""Run the pipeline's steps in order against the lake, with one (lazily started) Spark session, then
audit what was built and publish it (write-audit-publish, :mod:`mdslab.workloads.quality`)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mdslab import database
from mdslab.lakehouse import Lakehouse
from mdslab.settings import Settings
from mdslab.workloads.freshness import visible_waits
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.lineage.delivery import lineage_emitter
from mdslab.workloads.lineage.events import JobRun, RunRef
from mdslab.workloads.lineage.pipeline_runs import GATE_JOB, PipelineLineage, emit_gate
from mdslab.workloads.pipeline import runlog
from mdslab.workloads.pipeline.step_runtime import PipelineContext, SparkProvider, Step, StepResult, run_step
from mdslab.workloads.pipeline.steps import STEPS, select_steps
from mdslab.workloads.quality import QualityReport, audit

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class PipelineReport:
    results: list[StepResult]
    spark_start_s: float | None
    lake_to_spark_s: float
    seconds: float
    gate: QualityReport | None = None  # None: not audited (nothing new to publish, or publish=False)
    waits: list[float] = field(default_factory=list)  # seconds each newly visible event waited since arrival
    spark_wait_s: float = 0.0  # how long steps waited for a Spark session (its start, here or in the background)

    @property
    def after_spark_s(self) -> float:
        """The run's seconds without waiting for Spark: what the steps and the gate cost."""
        return self.seconds - self.spark_wait_s

    @property
    def published(self) -> bool:
        return self.gate is not None and self.gate.passed

    def gate_line(self) -> str:
        """What became visible to readers, in one line."""
        if self.gate is None:
            return "nothing new to publish: readers see the versions published before"
        if self.gate.passed:
            tables = ", ".join(f"{name} v{version}" for name, version in sorted(self.gate.audited.items()))
            return f"published (quality gate passed): {tables}"
        return f"NOT published, readers keep the previous versions: {self.gate.reason()}"


def lake_writer(settings: Settings, what: str = "mdslab pipeline run") -> AbstractContextManager[None]:
    """Hold the lake for one writer: steps and the gate, or refuse at once with one line naming who holds it.

    Two runs at once would both read the same increment and both append it (seen: every new event
    twice in silver); Delta's optimistic commits do not see that conflict, since appends never do."""
    lake = settings.lake
    return database.exclusive(
        settings.postgres,
        f"mdslab-lake:{settings.s3.endpoint_url}/{lake.raw_bucket}+{lake.curated_bucket}",
        holder=what,
        busy="another pipeline run is writing this lake",
    )


def audit_lake(
    settings: Settings,
    *,
    run_id: str,
    what: str,
    max_quarantine_share: float,
    publish: bool = True,
    lineage_parent: RunRef | None = None,
) -> QualityReport:
    """The quality gate on its own (not after a run's steps), under the lake's one-writer lock: it
    publishes, which must not happen while a run is writing. Reported as an OpenLineage run of its own
    (under ``lineage_parent``, the orchestrator's task run)."""
    lake = lakehouse(settings)
    with lake_writer(settings, what):
        report = audit(
            lake, settings.postgres, run_id=run_id, max_quarantine_share=max_quarantine_share, publish=publish
        )
    emitter = lineage_emitter(settings)
    emit_gate(emitter, lake, report, JobRun(settings.lineage.namespace, GATE_JOB, lineage_parent))
    emitter.close()
    return report


def _unpublished(lake: Lakehouse, tables: list[str]) -> list[str]:
    """Gold tables whose latest build is not the version readers see."""
    published = lake.publications()
    return [t for t in tables if lake.exists(t) and (t not in published or published[t].version != lake.version(t))]


def run_pipeline(
    settings: Settings,
    *,
    steps: list[str] | None = None,
    force: bool = False,
    spark: SparkProvider | None = None,
    on_step: Progress = lambda _name, _index, _total: None,
    publish: bool = True,
    max_quarantine_share: float = 0.05,
    lineage_parent: RunRef | None = None,
) -> PipelineReport:
    """Run the selected steps (all by default); up-to-date steps cost a metadata read each.

    With ``publish`` the gold tables of the selected steps are then audited and, when every check
    passed, published with the silver they were built from; a failed gate is reported (``gate``), not
    raised, so the caller shows the steps and the reason. Orchestrators pass ``publish=False`` and run
    the gate as a task of its own, and their task or flow run as ``lineage_parent`` (the OpenLineage
    run this pipeline run belongs to). One run at a time per lake (:func:`lake_writer`)."""
    selected = select_steps(steps)  # a typo is refused before anything connects
    lake = lakehouse(settings)
    lineage = PipelineLineage.of(settings, lake, lineage_parent)
    try:
        with lake_writer(settings), lake.reusing_snapshots():  # one writer, one thread: each table opened once
            report = _run(settings, lake, selected, force, spark, on_step, publish, max_quarantine_share, lineage)
    except BaseException as exc:
        lineage.finished(exc)
        raise
    lineage.finished()
    return report


def _run(
    settings: Settings,
    lake: Lakehouse,
    selected: list[Step],
    force: bool,
    spark: SparkProvider | None,
    on_step: Progress,
    publish: bool,
    max_quarantine_share: float,
    lineage: PipelineLineage,
) -> PipelineReport:
    started = time.perf_counter()
    provider = spark or SparkProvider(settings)
    ctx = PipelineContext(settings, lake, provider)
    waited_before = provider.waited_s
    results = []
    try:
        for index, step in enumerate(selected):
            on_step(step.name, index, len(selected))
            step_started = time.perf_counter()
            try:
                result = run_step(ctx, step, force=force, on_build=functools.partial(lineage.step_started, step))
            except Exception as exc:
                lineage.step_failed(step, exc)
                runlog.record_failure(settings.postgres, step.name, step.layer, time.perf_counter() - step_started, exc)
                raise
            lineage.step_finished(step, result)
            runlog.record_result(settings.postgres, step.layer, result)
            results.append(result)
    finally:
        if spark is None:
            provider.close()
    gate, waits = None, []
    gold = [name for step in selected if step.layer == "gold" for name in step.outputs]
    if publish and _unpublished(ctx.lake, gold):
        on_step("quality gate", len(selected), len(selected))
        before = {name: publication.version for name, publication in ctx.lake.publications().items()}
        gate = audit(
            ctx.lake, settings.postgres, run_id=ctx.run_id, max_quarantine_share=max_quarantine_share, tables=gold
        )
        lineage.gate(gate)
        if gate.passed:
            waits = visible_waits(ctx.lake, before, gate.audited, datetime.now(UTC))
    seconds = time.perf_counter() - started
    spark_wait_s = provider.waited_s - waited_before
    return PipelineReport(results, provider.started_in_s, ctx.lake_to_spark_s, seconds, gate, waits, spark_wait_s)


def builds_in_full(lake: Lakehouse) -> bool:
    """Whether the next run starts with full builds (on Spark): some step output was never written."""
    return any(not lake.exists(name) for step in STEPS for name in step.outputs)
