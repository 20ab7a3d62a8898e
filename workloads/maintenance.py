"""Table maintenance (compaction and vacuum) as one reported run: which tables it rewrote, at which
versions before and after."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from mdslab.lakehouse import Lakehouse
from mdslab.lakehouse.tables import MaintenanceResult
from mdslab.settings import Settings
from mdslab.workloads.lineage.job_runs import lake_input, lake_output, reported_run

OPTIMIZE_JOB = "mdslab.optimize"


def optimize_tables(
    settings: Settings, lake: Lakehouse, names: Sequence[str], *, retain_hours: int
) -> Iterator[MaintenanceResult]:
    """Compact small files and vacuum unreferenced ones, table by table (yielded as each is done)."""
    description = f"Compacts small files and vacuums files unreferenced for {retain_hours} h, table by table."
    with reported_run(settings, OPTIMIZE_JOB, description) as run:
        for name in names:
            before = lake.version(name)
            result = lake.optimize(name, retain_hours=retain_hours)
            if result.version is not None:
                run.inputs.append(lake_input(lake, name, before))
                run.outputs.append(lake_output(lake, name, result.version))
            yield result
