"""`python bench/pipeline.py --incremental`: what one batch costs on a big lake, incrementally.

One run: a bronze of ``--rows`` transactions (a lab's first simulation) is built in full (Spark on Ray,
session start excluded), then ``--batches`` continuations of ``--batch-rows`` are landed and built
incrementally one by one, each published by the quality gate. The baselines are measured in the same
run: the full rebuild of the big lake (``--full-refresh``, after the batches) and the same batch size
built from scratch in a lake of its own. Figures: seconds per batch, rows/s, ratios to both baselines.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from mdslab import database, objectstore
from mdslab.settings import LakeSettings, Settings
from mdslab.workloads.file_drop_feed import drop_batch
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.pipeline.runner import PipelineReport, run_pipeline
from mdslab.workloads.pipeline.step_runtime import SparkProvider
from mdslab.workloads.simulation_runs import next_run
from mdslab.workloads.simulator import simulate


@dataclass(frozen=True)
class Build:
    label: str
    rows: int  # new bronze transactions this build processed
    seconds: float
    report: PipelineReport

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "rows_per_s": round(self.rows / self.seconds, 1) if self.seconds else None,
            "published": self.report.published,
            "modes": {r.step: r.mode for r in self.report.results},
            "steps_s": {r.step: round(r.seconds, 3) for r in self.report.results},
        }


def _lab(base: Settings, tag: str) -> Settings:
    lake = LakeSettings(raw_bucket=f"{tag}-raw", curated_bucket=f"{tag}-curated")
    objectstore.ensure_buckets(objectstore.s3_client(base.s3), [lake.raw_bucket, lake.curated_bucket])
    pg = base.postgres.model_copy(update={"database": tag.replace("-", "_")})
    database.ensure_database(pg, pg.database)
    return base.model_copy(update={"lake": lake, "postgres": pg})


def _feed(settings: Settings, rows: int, seed: int) -> None:
    data = simulate(next_run(settings.postgres, transactions=rows, seed=seed).config)
    drop_batch(settings, lakehouse(settings), data)


def _build(settings: Settings, spark: SparkProvider, label: str, rows: int, *, full: bool = False) -> Build:
    started = time.perf_counter()
    report = run_pipeline(settings, spark=spark, force=full)
    return Build(label, rows, time.perf_counter() - started, report)


def _drop(lab: Settings) -> list[str]:
    """Delete a lab's buckets and database (a 5M-row lake is several GB; five runs filled 14 GB here)."""
    problems = objectstore.remove_buckets(objectstore.s3_client(lab.s3), [lab.lake.raw_bucket, lab.lake.curated_bucket])
    try:
        database.drop_database(lab.postgres, lab.postgres.database)
    except Exception as exc:
        problems.append(f"database {lab.postgres.database}: {exc}")
    return problems


def run(
    base: Settings,
    *,
    rows: int,
    batches: int,
    batch_rows: int,
    seed: int,
    say: Any = print,
    keep_lakes: bool = False,
) -> dict[str, Any]:
    tag = f"bench-inc-{uuid.uuid4().hex[:8]}"
    big, small = _lab(base, tag), _lab(base, f"{tag}-scratch")
    spark = SparkProvider(base)
    try:
        say("starting Spark on Ray")
        spark.get()
        say(f"simulating and landing {rows:,} transactions")
        _feed(big, rows, seed)
        say(f"first full build of {rows:,}")
        first = _build(big, spark, "first build", rows)
        increments = []
        for number in range(1, batches + 1):
            say(f"batch {number}/{batches}: landing and building {batch_rows:,} incrementally")
            _feed(big, batch_rows, seed + number)
            increments.append(_build(big, spark, f"batch {number}", batch_rows))
        say(f"full rebuild of the {rows + batches * batch_rows:,}-transaction lake")
        rebuild = _build(big, spark, "full rebuild", rows + batches * batch_rows, full=True)
        say(f"the same {batch_rows:,} built from scratch")
        _feed(small, batch_rows, seed)
        scratch = _build(small, spark, "from scratch", batch_rows)
    finally:
        spark.close()
        if not keep_lakes:
            for problem in _drop(big) + _drop(small):
                say(f"could not clean up: {problem}")
    return {
        "lake": tag if keep_lakes else f"{tag} (deleted; --keep-lakes keeps it)",
        "first_build": first.as_dict(),
        "increments": [
            {
                **build.as_dict(),
                "vs_full_rebuild": round(build.seconds / rebuild.seconds, 4),
                "vs_from_scratch": round(build.seconds / scratch.seconds, 3),
            }
            for build in increments
        ],
        "full_rebuild": rebuild.as_dict(),
        "from_scratch": scratch.as_dict(),
    }


def print_report(console: Console, result: dict[str, Any]) -> None:
    table = Table("build", "rows", "seconds", "rows/s", "vs full rebuild", "vs from scratch", "published")
    for entry in [result["first_build"], *result["increments"], result["full_rebuild"], result["from_scratch"]]:
        table.add_row(
            entry["label"],
            f"{entry['rows']:,}",
            f"{entry['seconds']:.2f}",
            f"{entry['rows_per_s']:,.0f}",
            f"{entry['vs_full_rebuild']:.1%}" if "vs_full_rebuild" in entry else "",
            f"{entry['vs_from_scratch']:.2f}x" if "vs_from_scratch" in entry else "",
            "yes" if entry["published"] else "NO",
        )
    console.print(table)
    seconds = sorted(entry["seconds"] for entry in result["increments"])
    if seconds:
        median = seconds[(len(seconds) - 1) // 2]
        console.print(
            f"median batch {median:.2f}s = {median / result['full_rebuild']['seconds']:.1%} of the full rebuild "
            f"({result['full_rebuild']['seconds']:.1f}s) and {median / result['from_scratch']['seconds']:.2f}x "
            f"the same batch from scratch ({result['from_scratch']['seconds']:.1f}s)",
            highlight=False,
        )
