"""Run the pipeline's steps in order against the lake, with one (lazily started) Spark session."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from mdslab.lakehouse import Lakehouse
from mdslab.settings import Settings
from mdslab.workloads.pipeline import runlog
from mdslab.workloads.pipeline.framework import PipelineContext, SparkProvider, StepResult, run_step
from mdslab.workloads.pipeline.steps import select_steps
from mdslab.workloads.tables import build_registry

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class PipelineReport:
    results: list[StepResult]
    spark_start_s: float | None
    lake_to_spark_s: float
    seconds: float


def lakehouse(settings: Settings) -> Lakehouse:
    return Lakehouse.from_settings(settings, build_registry())


def run_pipeline(
    settings: Settings,
    *,
    steps: list[str] | None = None,
    force: bool = False,
    spark: SparkProvider | None = None,
    on_step: Progress = lambda _name, _index, _total: None,
) -> PipelineReport:
    """Run the selected steps (all by default); up-to-date steps cost a metadata read each."""
    started = time.perf_counter()
    provider = spark or SparkProvider(settings)
    ctx = PipelineContext(settings, lakehouse(settings), provider)
    selected = select_steps(steps)
    results = []
    try:
        for index, step in enumerate(selected):
            on_step(step.name, index, len(selected))
            step_started = time.perf_counter()
            try:
                result = run_step(ctx, step, force=force)
            except Exception as exc:
                runlog.record_failure(settings.postgres, step.name, step.layer, time.perf_counter() - step_started, exc)
                raise
            runlog.record_result(settings.postgres, step.layer, result)
            results.append(result)
    finally:
        if spark is None:
            provider.close()
    return PipelineReport(results, provider.started_in_s, ctx.lake_to_spark_s, time.perf_counter() - started)
