"""`python bench/pipeline.py --incremental`: what one batch costs on a big lake, incrementally, against two
baselines of the same run (the whole lake rebuilt with ``--full-refresh``; the same batch size built from
scratch in a lake of its own).
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from typing import Any

from _harness import console, drop_lab, finish, lab, progress, table

from mdslab.settings import Settings, load_settings
from mdslab.workloads.bootstrap import ensure_platform
from mdslab.workloads.file_drop_feed import drop_batch
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.pipeline.runner import run_pipeline
from mdslab.workloads.pipeline.step_runtime import SparkProvider
from mdslab.workloads.simulation_runs import next_run
from mdslab.workloads.simulator import simulate


def feed(settings: Settings, rows: int, seed: int) -> None:
    """Land the lab's next simulation (a continuation of the same world after the first)."""
    data = simulate(next_run(settings.postgres, transactions=rows, seed=seed).config)
    drop_batch(settings, lakehouse(settings), data)


def build(settings: Settings, spark: SparkProvider, label: str, rows: int, *, full: bool = False) -> dict[str, Any]:
    """One pipeline run and its figures; ``rows``: the new bronze transactions it processed."""
    started = time.perf_counter()
    report = run_pipeline(settings, spark=spark, force=full)
    seconds = time.perf_counter() - started
    return {
        "label": label,
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds, 1) if seconds else None,
        "published": report.published,
        "modes": {r.step: r.mode for r in report.results},
        "steps_s": {r.step: round(r.seconds, 3) for r in report.results},
    }


def run(base: Settings, args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    rows, batches, batch_rows, seed = args.rows[0], args.batches, args.batch_rows, args.seed
    tag = f"bench-inc-{uuid.uuid4().hex[:8]}"
    big, small = lab(base, tag), lab(base, f"{tag}-scratch")
    spark = SparkProvider(base)
    try:
        say("starting Spark on Ray")
        spark.get()
        say(f"simulating and landing {rows:,} transactions")
        feed(big, rows, seed)
        say(f"first full build of {rows:,}")
        first = build(big, spark, "first build", rows)
        increments = []
        for number in range(1, batches + 1):
            say(f"batch {number}/{batches}: landing and building {batch_rows:,} incrementally")
            feed(big, batch_rows, seed + number)
            increments.append(build(big, spark, f"batch {number}", batch_rows))
        say(f"full rebuild of the {rows + batches * batch_rows:,}-transaction lake")
        rebuild = build(big, spark, "full rebuild", rows + batches * batch_rows, full=True)
        say(f"the same {batch_rows:,} built from scratch")
        feed(small, batch_rows, seed)
        scratch = build(small, spark, "from scratch", batch_rows)
    finally:
        spark.close()
        if not args.keep_lakes:
            for problem in drop_lab(big) + drop_lab(small):
                console.print(f"could not clean up: {problem}", highlight=False)
    for batch in increments:
        batch["vs_full_rebuild"] = round(batch["seconds"] / rebuild["seconds"], 4)
        batch["vs_from_scratch"] = round(batch["seconds"] / scratch["seconds"], 3)
    return {
        "lake": tag if args.keep_lakes else f"{tag} (deleted; --keep-lakes keeps it)",
        "first_build": first,
        "increments": increments,
        "full_rebuild": rebuild,
        "from_scratch": scratch,
    }


def print_report(result: dict[str, Any]) -> None:
    builds = [result["first_build"], *result["increments"], result["full_rebuild"], result["from_scratch"]]
    rows = [
        [
            build["label"],
            f"{build['rows']:,}",
            f"{build['seconds']:.2f}",
            f"{build['rows_per_s']:,.0f}",
            f"{build['vs_full_rebuild']:.1%}" if "vs_full_rebuild" in build else "",
            f"{build['vs_from_scratch']:.2f}x" if "vs_from_scratch" in build else "",
            "yes" if build["published"] else "NO",
        ]
        for build in builds
    ]
    columns = ("build", "rows", "seconds", "rows/s", "vs full rebuild", "vs from scratch", "published")
    table(None, columns, rows)
    if seconds := sorted(build["seconds"] for build in result["increments"]):
        median, full, scratch = seconds[(len(seconds) - 1) // 2], result["full_rebuild"], result["from_scratch"]
        console.print(
            f"median batch {median:.2f}s = {median / full['seconds']:.1%} of the full rebuild ({full['seconds']:.1f}s)"
            f" and {median / scratch['seconds']:.2f}x the same batch from scratch ({scratch['seconds']:.1f}s)",
            highlight=False,
        )


def main(args: argparse.Namespace, report: dict[str, Any]) -> int:
    with progress() as stage:
        ensure_platform(load_settings(), on_step=stage.say)
        report |= run(load_settings(), args, stage.say)
    return finish(report, args.results_dir, print_report)
