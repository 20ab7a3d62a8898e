"""What every benchmark shares, so each script holds only what it measures: its arguments' common part,
the header of its results (machine, versions, command), the progress line, the results JSON, the
report's tables and number formats, and the labs (buckets and database of their own) it runs in.

Figures are printed from the same report dict that goes to JSON, so the console and the file never
disagree.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from mdslab import database, objectstore
from mdslab.services.ports import listener_of
from mdslab.settings import LakeSettings, Settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
GIB = 1024**3
Advance = Callable[[int], None]

console = Console()
if not console.is_terminal:
    console = Console(width=170)  # a log file or a pipe: do not squeeze the tables to 80 columns


# --- arguments and the results' header ---------------------------------------------------------------


def parser(script: str, doc: str | None, *, seed: int = 42) -> argparse.ArgumentParser:
    """The options every benchmark takes (``--seed``, ``--results-dir``); the script adds its own."""
    found = argparse.ArgumentParser(
        prog=f"python bench/{script}", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    found.add_argument("--seed", type=int, default=seed, help=f"Simulation seed (default {seed}).")
    found.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help=f"Where the JSON goes ({RESULTS_DIR}).")
    return found


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def header(benchmark: str, packages: Sequence[str], argv: list[str] | None) -> dict[str, Any]:
    """What the figures were measured on and with: the start of every results JSON."""
    memory = psutil.virtual_memory()
    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "benchmark": benchmark,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": {
            "logical_cpus": psutil.cpu_count(logical=True),
            "physical_cpus": psutil.cpu_count(logical=False),
            "memory_gib": round(memory.total / GIB, 1),
            "load_average_at_start": load_average(),
        },
        "versions": versions,
    }


def arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed options as JSON values."""
    return {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}


def finish(report: dict[str, Any], results_dir: Path, print_report: Callable[[dict[str, Any]], None]) -> int:
    """Write the results JSON (first, so a report that fails to print loses nothing), then print it."""
    report["load_average_at_end"] = load_average()
    started = datetime.fromisoformat(report["started_at"])
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / f"{report['benchmark']}-{started:%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_report(report)
    console.print(f"JSON: {out}", style="dim", highlight=False)
    return 0


# --- progress ----------------------------------------------------------------------------------------


class Stage:
    """The progress line's one task, reset per step: ``stage(text, total)`` returns its ``advance(n)``."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("starting services", total=None)

    def __call__(self, text: str, total: float | None = None) -> Advance:
        self.progress.reset(self.task, description=text, total=total, completed=0)
        return lambda n: self.progress.advance(self.task, n)

    def say(self, text: str) -> None:
        """A step without a count (what ``on_step`` callbacks take)."""
        self(text)

    def framed(self, prefix: str, suffix: str) -> Callable[[str], None]:
        """``say`` with every step's text between ``prefix`` and ``suffix`` (the size, the run number)."""
        return lambda text: self.say(f"{prefix}{text}{suffix}")


@contextmanager
def progress() -> Iterator[Stage]:
    """Spinner, step, bar, done/total, elapsed; gone when finished (transient)."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as shown:
        yield Stage(shown)


# --- printing ----------------------------------------------------------------------------------------


def title(text: str, report: dict[str, Any], details: str) -> None:
    """A report's first lines: what ran, then the machine, its load at start and end, and ``details``."""
    info = report["machine"]
    console.print()
    console.print(text, highlight=False)
    console.print(
        f"machine: {info['logical_cpus']} logical CPUs, {info['memory_gib']} GiB; load average "
        f"{info['load_average_at_start'][0]} at start, {report['load_average_at_end'][0]} at end | {details}",
        style="dim",
        highlight=False,
    )


def table(heading: str | None, columns: Sequence[str], rows: Iterable[Sequence[str] | None], left: int = 1) -> None:
    """Print a table: the first ``left`` columns left-aligned, numbers right; a ``None`` row starts a section."""
    shown = Table(title=heading, title_justify="left")
    for index, column in enumerate(columns):
        shown.add_column(column, justify="left" if index < left else "right")
    for row in rows:
        if row is None:
            shown.add_section()
        else:
            shown.add_row(*row)
    console.print(shown)


def note(text: str) -> None:
    """How to read a table: dim, after it."""
    console.print(text, style="dim", highlight=False)


def ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}x" if value is not None and base else "-"


def num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def verdict(met: bool | None) -> str:
    """A target's verdict; ``None``: its step or size did not run."""
    return "-" if met is None else "[green]met[/]" if met else "[red]not met[/]"


def human_rows(rows: int) -> str:
    if rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M"
    return f"{rows // 1_000}k" if rows % 1_000 == 0 else f"{rows:,}"


# --- figures -----------------------------------------------------------------------------------------


def percentiles(values: np.ndarray | list[float], scale: float = 1.0) -> dict[str, float]:
    """The summary every latency and freshness figure is reported as, so they all read alike."""
    data = np.asarray(values, dtype=np.float64) * scale
    if not len(data):
        return {}
    p50, p95, p99 = np.percentile(data, [50, 95, 99])
    figures = {"p50": p50, "p95": p95, "p99": p99, "max": data.max(), "mean": data.mean()}
    return {key: round(float(value), 4) for key, value in figures.items()}


def median_run(runs: list[Any], key: Callable[[Any], float]) -> Any:
    """The run with the median ``key`` (the lower middle one of an even count), or None."""
    ordered = sorted(runs, key=key)
    return ordered[(len(ordered) - 1) // 2] if ordered else None


# --- labs and ports ----------------------------------------------------------------------------------


def lab(
    base: Settings, tag: str, *, curated: str = "curated", own_database: bool = True, create: bool = True
) -> Settings:
    """``base`` with buckets ``<tag>-raw`` and ``<tag>-<curated>`` and (``own_database``) a database named
    after ``tag``, so a benchmark's tables never mix with the lab's or another size's."""
    lake = LakeSettings(raw_bucket=f"{tag}-raw", curated_bucket=f"{tag}-{curated}")
    pg = base.postgres.model_copy(update={"database": tag.replace("-", "_")}) if own_database else base.postgres
    if create:
        objectstore.ensure_buckets(objectstore.s3_client(base.s3), [lake.raw_bucket, lake.curated_bucket])
        if own_database:
            database.ensure_database(pg, pg.database)
    return base.model_copy(update={"lake": lake, "postgres": pg})


def drop_lab(settings: Settings, *, own_database: bool = True) -> list[str]:
    """Delete a lab's buckets (and database): a 5M-row lake is several GB. Returns what could not be deleted."""
    buckets = [settings.lake.raw_bucket, settings.lake.curated_bucket]
    problems = objectstore.remove_buckets(objectstore.s3_client(settings.s3), buckets)
    if own_database:
        try:
            database.drop_database(settings.postgres, settings.postgres.database)
        except Exception as exc:
            problems.append(f"database {settings.postgres.database}: {exc}")
    return problems


def listener_pid(port: int) -> int | None:
    """The pid listening on ``port`` (the embedded Kafka, S3 or PostgreSQL), to measure its CPU."""
    found = re.search(r"\(pid (\d+)\)$", listener_of(port))
    return int(found[1]) if found else None


def free_port(host: str) -> int:
    """A port nothing listens on now, for a server this benchmark starts."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
