"""What a pipeline step is, and how one runs: idempotently, incrementally where it can, with its record.

A step is a function of (settings, input tables at known versions) -> output tables. Each output's
commit records the step name, the input versions it was built from and how (``full`` or
``incremental``); when every output already records the current input versions the step is up to
date and does nothing (no new rows, no new version, no Spark session).

Incremental invariant (dbt's ``is_incremental()``, Delta Live Tables' streaming tables): a step with an
:class:`Incremental` recipe reads only the rows its *change* inputs gained after the versions its
outputs recorded, and writes them (append, or MERGE by key) in commits that record the new versions.
The recorded versions are therefore in the same commit as the rows they account for, like the stream
consumer's offsets: a crash before the commit repeats the batch, a crash after it never does. It falls
back to a full build (outputs overwritten whole) whenever an increment could differ from one: forced,
nothing recorded yet, outputs that disagree on what they consumed (a crash between two outputs), a
*fixed* input (e.g. reference data) that changed, or a change input that lost or rewrote rows.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from mdslab.errors import MdslabError
from mdslab.lakehouse import Lakehouse, NotAppendOnlyError, TableMissingError
from mdslab.lakehouse.tables import METADATA_KEY
from mdslab.settings import Settings

if TYPE_CHECKING:
    from mdslab.compute.spark import SparkRuntime

Versions = dict[str, int | str]
Status = Literal["built", "up_to_date"]
BuildMode = Literal["full", "incremental"]
WriteMode = Literal["overwrite", "append", "merge"]
MAINTENANCE = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END"})  # rewrite files, not data


class SparkProvider:
    """Starts Spark on first use only, so an up-to-date pipeline never pays the session start; or ahead,
    in the background (:meth:`start_in_background`), while the caller does something else."""

    def __init__(
        self,
        settings: Settings,
        *,
        own_thread: bool = False,
        on_start: Callable[[SparkRuntime], None] | None = None,
    ) -> None:
        """``own_thread``: start the session in a thread that lives until :meth:`close`, for a provider
        shared by callers on several threads (Ray's processes die with the thread that started them).
        ``on_start``: called with the session once it is up (a CLI says where its live UIs are)."""
        self._settings = settings
        self._own_thread = own_thread
        self._on_start = on_start
        self.started_in_s: float | None = None
        self.warmed_in_s: float | None = None  # the background warm-up, when there was one
        self.waited_s = 0.0  # how long callers of get() were blocked by a start (theirs or the background's)
        self._spark: Any = None
        self._owned = False
        self._lock = threading.Lock()
        self._failed: BaseException | None = None
        self._closed = threading.Event()

    def get(self) -> Any:
        asked = time.perf_counter()
        with self._lock:
            if self._failed is not None:
                failed, self._failed = self._failed, None
                raise failed
            if self._spark is None and self._own_thread:
                self._start_in_own_thread()
            elif self._spark is None:
                self._start()
        self.waited_s += time.perf_counter() - asked
        return self._spark

    def start_in_background(self, warm_up: Callable[[Any], float] | None = None) -> threading.Thread:
        """Start the session (and run ``warm_up`` on it) in a thread; :meth:`get` waits for both. A
        failure is raised by the next :meth:`get`, in the caller's thread."""
        self._lock.acquire()  # held from now on, so that no get() can start a second session meanwhile

        def start() -> None:
            try:
                if self._spark is None:
                    self._start()
                if warm_up is not None:
                    self.warmed_in_s = warm_up(self._spark)
            except BaseException as exc:  # re-raised by get()
                self._failed = exc
            finally:
                self._lock.release()
            # Ray starts its GCS and raylet with PR_SET_PDEATHSIG, which Linux ties to the *thread* that
            # started them: they were killed when this thread ended. It lives until close().
            self._closed.wait()

        thread = threading.Thread(target=start, name="spark-start", daemon=True)
        thread.start()
        return thread

    def _start_in_own_thread(self) -> None:
        started = threading.Event()
        failed: list[BaseException] = []

        def start() -> None:
            try:
                self._start()
            except BaseException as exc:  # raised in the caller's thread below; nothing to keep alive
                failed.append(exc)
                return
            finally:
                started.set()
            self._closed.wait()

        self._closed.clear()
        threading.Thread(target=start, name="spark-session", daemon=True).start()
        started.wait()
        if failed:
            raise failed[0]

    def _start(self) -> None:
        from mdslab.compute.spark import start_spark
        from mdslab.compute.spark_history import event_log_dir

        runtime = start_spark(self._settings.compute, event_log_dir=event_log_dir(self._settings))
        self._spark = runtime.spark
        self._owned = not runtime.reused
        self.started_in_s = 0.0 if runtime.reused else runtime.started_in_s
        if self._on_start is not None:
            self._on_start(runtime)

    def close(self) -> None:
        """Stop Spark and Ray if this provider started them (a shared session is left running)."""
        with self._lock:
            if self._owned:
                from mdslab.compute.ray_runtime import shutdown_ray
                from mdslab.compute.spark import stop_spark

                stop_spark()
                shutdown_ray()
            self._spark, self._owned = None, False
            self._closed.set()  # the background start's thread may end now


@dataclass
class PipelineContext:
    settings: Settings
    lake: Lakehouse
    spark: SparkProvider
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    lake_to_spark_s: float = 0.0
    scratch: dict[str, Any] = field(default_factory=dict)

    def spark_table(self, name: str, version: int) -> Any:
        """A Delta snapshot as a Spark DataFrame, through Ray's object store (no s3a:// in Spark)."""
        from mdslab.compute.exchange import delta_to_spark

        spark = self.spark.get()  # a session start is not lake -> Spark time
        started = time.perf_counter()
        df = delta_to_spark(spark, self.lake.uri(name), storage_options=self.lake.storage_options, version=version)
        self.lake_to_spark_s += time.perf_counter() - started
        return df


@dataclass(frozen=True)
class StepOutput:
    """What a step's build hands back: output data per table (Arrow, or a Spark DataFrame) and how
    each is written (default: overwrite; ``merge`` upserts on the table's key)."""

    tables: dict[str, Any]
    rows_in: int
    cleanup: Callable[[], None] | None = None
    modes: dict[str, WriteMode] = field(default_factory=dict)


log = logging.getLogger(__name__)


class FullBuildNeededError(MdslabError):
    """An increment found that rows it did not read could change (e.g. a policy term added where claims
    built earlier fall): only a full build is exact."""


@dataclass(frozen=True)
class Incremental:
    """How a step adds to its outputs instead of rebuilding them.

    ``changes``: inputs read as the rows appended since the recorded version; any other input is
    *fixed*, and a change to it means a full build. ``build(ctx, recorded, current)`` gets both sets of
    versions."""

    changes: tuple[str, ...]
    build: Callable[[PipelineContext, Versions, Versions], StepOutput]


@dataclass(frozen=True)
class Step:
    name: str
    layer: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    build: Callable[[PipelineContext, Versions], StepOutput]
    description: str
    input_versions: Callable[[PipelineContext], Versions] | None = None
    incremental: Incremental | None = None


@dataclass(frozen=True)
class StepResult:
    """What a step did. ``phases`` splits a build's seconds: ``read`` (lake -> Spark), ``compute``
    (planning, and the engine's work up to the first output batch) and ``write`` (moving the outputs
    out of the engine and committing them to the lake)."""

    step: str
    status: Status
    inputs: Versions
    outputs: dict[str, int]
    rows_in: int
    rows_out: dict[str, int]
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)
    mode: BuildMode | None = None  # None: up to date


def current_input_versions(ctx: PipelineContext, step: Step) -> Versions:
    if step.input_versions is not None:
        return step.input_versions(ctx)
    versions: Versions = {}
    for name in step.inputs:
        version = ctx.lake.version(name)
        if version is None:
            raise TableMissingError(f"step {step.name} needs table {name}, which does not exist yet")
        versions[name] = version
    return versions


def step_stamp(lake: Lakehouse, table: str) -> tuple[dict[str, Any], list[str]]:
    """What the last pipeline-step commit of ``table`` recorded, and the data-changing commits made
    after it by anything else (maintenance commits, OPTIMIZE and VACUUM, do not count).

    Reads the log from the newest commit back, a few commits at a time: an incremental table gains a
    commit per run, and its whole history is one S3 read per commit."""
    table_log = lake.delta(table)
    limit, seen = 4, 0
    while True:
        entries = table_log.history(limit)  # newest first
        after: list[str] = []
        for entry in entries:
            raw = entry.get(METADATA_KEY) or "{}"
            stamp = json.loads(raw) if isinstance(raw, str) else dict(raw)
            if stamp.get("step"):
                return stamp, after
            if entry.get("operation") not in MAINTENANCE:
                after.append(f"{entry.get('operation')} at v{entry.get('version')}")
        if len(entries) <= seen or len(entries) < limit:
            return {}, after
        seen, limit = len(entries), limit * 8


def recorded_inputs(ctx: PipelineContext, step: Step, output: str) -> Versions | None:
    """The input versions ``output`` was last built from by ``step``; None if something else wrote it
    since (then only a full build is safe)."""
    if not ctx.lake.exists(output):
        return None
    stamp, changed_after = step_stamp(ctx.lake, output)
    return stamp.get("inputs") if stamp.get("step") == step.name and not changed_after else None


def _incremental_base(step: Step, recorded: list[Versions | None], versions: Versions) -> Versions | None:
    """The versions an increment starts from (``recorded``: per output), or None when only a full
    build is exact."""
    if step.incremental is None:
        return None
    base = recorded[0]
    if base is None or any(other != base for other in recorded[1:]):
        return None
    if set(base) != set(versions):
        return None
    fixed_changed = any(
        base[name] != version for name, version in versions.items() if name not in step.incremental.changes
    )
    return None if fixed_changed else base


def _redesigned_outputs(ctx: PipelineContext, step: Step) -> str:
    """The outputs whose stored design (columns, partitioning) is older than the registered one, said in
    words; empty when none is. Such a table changes only by a full build (``Lakehouse.layout_changes``)."""
    changed = {name: ctx.lake.layout_changes(name) for name in step.outputs}
    return "; ".join(f"{name} ({', '.join(changes)})" for name, changes in changed.items() if changes)


@dataclass
class _Tally:
    """Rows that went through a reader, and how long its first batch took once asked for: a Spark
    output runs its whole plan before the first batch comes out."""

    rows: int = 0
    first_batch_s: float | None = None


def _counted(reader: pa.RecordBatchReader, tally: _Tally) -> pa.RecordBatchReader:
    def batches() -> Iterator[pa.RecordBatch]:
        asked = time.perf_counter()
        for batch in reader:
            if tally.first_batch_s is None:
                tally.first_batch_s = time.perf_counter() - asked
            tally.rows += batch.num_rows
            yield batch

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def _to_arrow(ctx: PipelineContext, data: Any) -> pa.Table | pa.RecordBatchReader:
    if isinstance(data, pa.Table | pa.RecordBatchReader):
        return data
    from mdslab.compute.exchange import spark_to_arrow

    return spark_to_arrow(data)


def run_step(
    ctx: PipelineContext, step: Step, *, force: bool = False, on_build: Callable[[Versions], None] | None = None
) -> StepResult:
    """Build the step's outputs unless they already record the current input versions (``on_build``:
    told the input versions when it does build, before it starts)."""
    started = time.perf_counter()
    versions = current_input_versions(ctx, step)
    recorded = [recorded_inputs(ctx, step, output) for output in step.outputs]
    if not force and all(inputs == versions for inputs in recorded):
        outputs = {name: ctx.lake.version(name) or 0 for name in step.outputs}
        rows = {name: ctx.lake.info(name).rows for name in step.outputs}
        return StepResult(step.name, "up_to_date", versions, outputs, 0, rows, time.perf_counter() - started)
    if on_build is not None:
        on_build(versions)
    read_before, build_started = ctx.lake_to_spark_s, time.perf_counter()
    base = None if force else _incremental_base(step, recorded, versions)
    if base is not None and (redesigned := _redesigned_outputs(ctx, step)):
        log.info("%s: a full build instead of an increment: the lab changed the design of %s", step.name, redesigned)
        base = None
    built: StepOutput | None = None
    mode: BuildMode = "full"
    if base is not None and step.incremental is not None:
        try:
            built, mode = step.incremental.build(ctx, base, versions), "incremental"
        except (NotAppendOnlyError, FullBuildNeededError) as why:
            log.info("%s: a full build instead of an increment: %s", step.name, why)
            built = None  # an input lost or rewrote rows since, or its new rows change earlier results
    if built is None:
        built, mode = step.build(ctx, versions), "full"
    read_s = ctx.lake_to_spark_s - read_before
    phases = {"read": read_s, "compute": time.perf_counter() - build_started - read_s, "write": 0.0}
    output_versions: dict[str, int] = {}
    rows_out: dict[str, int] = {}
    try:
        for name in step.outputs:
            tally, write_started = _Tally(), time.perf_counter()
            data = _to_arrow(ctx, built.tables[name])
            stream = _counted(data, tally) if isinstance(data, pa.RecordBatchReader) else data
            metadata = {
                "step": step.name,
                "inputs": versions,
                "rows_in": built.rows_in,
                "run_id": ctx.run_id,
                "mode": mode,
            }
            write_mode = built.modes.get(name, "overwrite")
            if write_mode == "merge":
                rows = stream.read_all() if isinstance(stream, pa.RecordBatchReader) else stream
                if rows.num_rows:
                    output_versions[name] = ctx.lake.merge_table(name, rows, metadata=metadata).version
                else:  # a MERGE of nothing commits nothing; the new input versions must still be recorded
                    output_versions[name] = ctx.lake.write_table(name, rows, mode="append", metadata=metadata)
            else:
                output_versions[name] = ctx.lake.write_table(name, stream, mode=write_mode, metadata=metadata)
            rows_out[name] = tally.rows if isinstance(data, pa.RecordBatchReader) else data.num_rows
            # A streamed output (Spark) computes until its first batch arrives; the rest is transfer and commit.
            engine_s = tally.first_batch_s or 0.0
            phases["compute"] += engine_s
            phases["write"] += time.perf_counter() - write_started - engine_s
    finally:
        if built.cleanup is not None:
            built.cleanup()
    seconds = time.perf_counter() - started
    return StepResult(step.name, "built", versions, output_versions, built.rows_in, rows_out, seconds, phases, mode)
