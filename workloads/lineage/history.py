"""Run history from the lineage store: each run's job, state, duration, parent, and the datasets it
read and wrote at their versions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mdslab.errors import MdslabError, did_you_mean
from mdslab.settings import PostgresSettings
from mdslab.workloads.lineage.recorded import Names, display_name
from mdslab.workloads.lineage.store import job_names, recent_runs

FINISHED = ("COMPLETE", "FAIL", "ABORT")


class UnknownJobError(MdslabError, LookupError):
    """No run of the job asked for is recorded."""


@dataclass(frozen=True)
class DatasetAt:
    name: str
    version: str | None
    rows: int | None = None

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@v{self.version}"


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    job: str
    state: str  # COMPLETE, FAIL, ABORT, or RUNNING while only START/RUNNING is recorded
    started: datetime
    ended: datetime | None
    parent: str | None  # "<job> <run id>"
    error: str | None
    inputs: tuple[DatasetAt, ...]
    outputs: tuple[DatasetAt, ...]

    @property
    def seconds(self) -> float | None:
        return None if self.ended is None else (self.ended - self.started).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "job": self.job,
            "state": self.state,
            "started": self.started.isoformat(),
            "ended": None if self.ended is None else self.ended.isoformat(),
            "seconds": self.seconds,
            "parent": self.parent,
            "error": self.error,
            "inputs": [d.__dict__ for d in self.inputs],
            "outputs": [d.__dict__ for d in self.outputs],
        }


def run_history(pg: PostgresSettings, names: Names, *, job: str | None = None, limit: int = 20) -> list[RunSummary]:
    """The ``limit`` latest runs, of ``job`` and its sub-jobs if given (``mdslab.pipeline`` takes its steps
    too); an unknown job is an error naming the recorded ones."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    if job is not None and "\x00" in job:  # PostgreSQL's text cannot hold it, so no job is named so
        raise UnknownJobError(f"no run of job {job!r} is recorded")
    rows = recent_runs(pg, job=job, limit=limit)
    if not rows and job is not None:
        known = job_names(pg)
        hint = did_you_mean(job, known, f"recorded jobs: {', '.join(known) or '(none yet)'}", cutoff=0.5)
        raise UnknownJobError(f"no run of job {job!r} is recorded; {hint}")
    return [_summary(run_id, started, event, names) for run_id, started, event in rows]


def _summary(run_id: str, started: datetime, event: dict[str, Any], names: Names) -> RunSummary:
    state = event.get("eventType") or "OTHER"
    finished = state in FINISHED
    facets = event["run"].get("facets") or {}
    parent = facets.get("parent")
    error = facets.get("errorMessage", {}).get("message")
    return RunSummary(
        run_id=run_id,
        job=event["job"]["name"],
        state=state if finished else "RUNNING",
        started=started,
        ended=datetime.fromisoformat(event["eventTime"]) if finished else None,
        parent=f"{parent['job']['name']} {parent['run']['runId']}" if parent else None,
        error=error,
        inputs=tuple(_at(d, names) for d in event.get("inputs", [])),
        outputs=tuple(_at(d, names) for d in event.get("outputs", [])),
    )


def _at(dataset: dict[str, Any], names: Names) -> DatasetAt:
    version = (dataset.get("facets") or {}).get("version", {}).get("datasetVersion")
    rows = (dataset.get("outputFacets") or {}).get("outputStatistics", {}).get("rowCount")
    return DatasetAt(display_name(names, dataset["namespace"], dataset["name"]), version, rows)
