"""``mdslab run snowflake``: write the lab as a Snowflake project and check it against the lake.

The check runs each SQL step twice on DuckDB over the tables the lake's readers see (published
versions): as the lab's plan, and as the generated Snowflake query read back through sqlglot. Equal
rows mean the translation kept the step's logic; see docs/deep-dives/snowflake.md for what that does
and does not prove.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdslab.errors import MdslabError
from mdslab.lakehouse import Lakehouse
from mdslab.workloads.lake import build_registry
from mdslab.workloads.snowflake.check import OutputCheck, check_steps, unparsed_statements
from mdslab.workloads.snowflake.project import ProjectSettings, project_files, write_project


class SnowflakeCheckError(MdslabError):
    """The generated Snowflake SQL did not parse, or a step's query did not give the lab's rows."""


@dataclass(frozen=True)
class SnowflakeReport:
    folder: Path
    files: list[Path]
    statements: int
    checks: list[OutputCheck] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)  # the lake tables the check read, at these versions
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "files": [str(path) for path in self.files],
            "statements": self.statements,
            "checked_on_lake_versions": self.versions,
            "checks": [{**check.__dict__, "equal": check.equal} for check in self.checks],
            "seconds": round(self.seconds, 2),
        }


def run_snowflake(
    lake: Lakehouse | None,
    folder: Path,
    project: ProjectSettings,
    *,
    on_progress: Callable[[str], None] = lambda _: None,
) -> SnowflakeReport:
    """Generate the project into ``folder``; check it on ``lake`` unless it is None (``--no-check``).

    Raises :class:`SnowflakeCheckError` naming what differs: the files are written first either way, so
    the person can read the statement that failed."""
    started = time.perf_counter()
    on_progress("generating the Snowflake project")
    files = project_files(lake.registry if lake else build_registry(), project)
    written = write_project(files, folder)
    unparsed = unparsed_statements(files)
    if unparsed:
        raise SnowflakeCheckError(f"{len(unparsed)} statement(s) do not parse as Snowflake SQL: {unparsed[0]}")
    statements = sum(len(file.statements) for file in files)
    if lake is None:
        return SnowflakeReport(folder, written, statements, seconds=time.perf_counter() - started)
    versions: dict[str, int] = {}

    def read(table: str) -> Any:
        version = lake.current_version(table)
        if version is None:
            raise SnowflakeCheckError(
                f"the lake has no published {table} to check against: run `mdslab demo` (or `mdslab pipeline run`) "
                "first, or pass --no-check to only write the files"
            )
        versions[table] = version
        return lake.read_table(table, version=version)

    checks = check_steps(read, on_progress=on_progress)
    differing = [check for check in checks if not check.equal]
    if differing:
        first = differing[0]
        raise SnowflakeCheckError(
            f"{first.table}: the Snowflake query gives {first.actual_rows:,} rows, the lab's plan "
            f"{first.expected_rows:,} ({first.missing:,} missing, {first.extra:,} extra); the files are in {folder}"
        )
    return SnowflakeReport(folder, written, statements, checks, versions, time.perf_counter() - started)
