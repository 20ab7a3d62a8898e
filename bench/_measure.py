"""What a benchmark phase cost: wall time, CPU time and peak memory of this process and all it started.

Spark on Ray spreads one job over many processes (this driver, the Spark driver JVM, Ray's GCS and
raylet, the executor JVM, Ray Data and exchange workers), so memory is summed over the whole process
tree. RSS counts pages shared between processes (Ray's object store is shared memory, mapped by
every process that touches it) once per process; PSS splits each shared page between its users, so
the sum of PSS is what the tree really occupies. Both are sampled; PSS is the headline figure.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata

import psutil
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

GIB = 1024**3


@dataclass
class Phase:
    """One measured stretch of work."""

    name: str
    seconds: float = 0.0
    cpu_s: float = 0.0
    peak_pss: int = 0
    peak_rss: int = 0
    start_pss: int = 0
    peak_processes: int = 0

    @property
    def cores_used(self) -> float:
        return self.cpu_s / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_s, 2),
            "peak_pss_gib": round(self.peak_pss / GIB, 3),
            "peak_rss_gib": round(self.peak_rss / GIB, 3),
            "pss_at_start_gib": round(self.start_pss / GIB, 3),
            "peak_processes": self.peak_processes,
        }


@dataclass
class _Snapshot:
    pss: int
    rss: int
    cpu_s: float
    processes: int


def _tree() -> list[psutil.Process]:
    me = psutil.Process()
    try:
        return [me, *me.children(recursive=True)]
    except psutil.Error:
        return [me]


def snapshot() -> _Snapshot:
    """Memory and CPU time of this process tree right now.

    CPU time includes children that already exited and were reaped by a process of the tree (their
    time moves into the parent's ``children_*`` counters), so it only grows while the tree lives.
    """
    pss = rss = 0
    cpu = 0.0
    processes = 0
    for proc in _tree():
        try:
            with proc.oneshot():
                memory = proc.memory_full_info()
                times = proc.cpu_times()
        except psutil.Error:
            continue  # exited between the listing and the read
        processes += 1
        pss += memory.pss
        rss += memory.rss
        cpu += times.user + times.system + times.children_user + times.children_system
    return _Snapshot(pss, rss, cpu, processes)


@dataclass
class TreeSampler:
    """Samples the process tree in a thread; :meth:`phase` measures one stretch of work.

    Peak memory is the highest sample (every ``interval_s``), so spikes shorter than the interval
    may be missed; the phase's start and end are sampled too.
    """

    interval_s: float = 0.5
    phases: list[Phase] = field(default_factory=list)
    _current: Phase | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> TreeSampler:
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _record(self, snap: _Snapshot) -> None:
        with self._lock:
            phase = self._current
            if phase is not None:
                phase.peak_pss = max(phase.peak_pss, snap.pss)
                phase.peak_rss = max(phase.peak_rss, snap.rss)
                phase.peak_processes = max(phase.peak_processes, snap.processes)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._record(snapshot())

    @contextmanager
    def phase(self, name: str) -> Iterator[Phase]:
        start = snapshot()
        phase = Phase(name, start_pss=start.pss)
        with self._lock:
            self._current = phase
        self._record(start)
        started = time.perf_counter()
        try:
            yield phase
        finally:
            phase.seconds = time.perf_counter() - started
            end = snapshot()
            self._record(end)
            phase.cpu_s = max(0.0, end.cpu_s - start.cpu_s)
            with self._lock:
                self._current = None
            self.phases.append(phase)


def machine_busy_s() -> float:
    """CPU seconds all processes on the machine have used so far (every core; not idle, I/O wait or steal;
    Linux counts guest time inside user)."""
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system + times.irq + times.softirq)


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    memory = psutil.virtual_memory()
    return {
        "logical_cpus": psutil.cpu_count(logical=True),
        "physical_cpus": psutil.cpu_count(logical=False),
        "memory_gib": round(memory.total / GIB, 1),
        "load_average_at_start": [round(x, 2) for x in load_average()],
    }


def package_versions(*packages: str) -> dict[str, str]:
    """The installed version of each package ("not installed" if missing), for the report."""
    found = {}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def bench_progress(console: Console) -> Progress:
    """The benchmarks' progress display: spinner, step, bar, done/total, elapsed; gone when finished."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
