"""What a benchmark phase cost: wall time, CPU time and peak memory of this process and all it started,
and the CPU the rest of the machine used meanwhile.

Spark on Ray spreads one job over many processes (the Spark driver JVM, Ray's GCS and raylet, executors,
workers), so memory is summed over the whole process tree. RSS counts a page shared between processes
(Ray's object store) once per process; PSS splits it between its users, so the sum of PSS is what the
tree really occupies: the headline figure.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Self

import psutil
from _harness import GIB


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
    machine_cpu_s: float = 0.0  # every process on the machine, this tree included

    @property
    def others_cpu_s(self) -> float:
        return max(0.0, self.machine_cpu_s - self.cpu_s)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_s, 2),
            "peak_pss_gib": round(self.peak_pss / GIB, 3),
            "peak_rss_gib": round(self.peak_rss / GIB, 3),
            "pss_at_start_gib": round(self.start_pss / GIB, 3),
            "peak_processes": self.peak_processes,
        }


@dataclass
class Snapshot:
    pss: int
    rss: int
    cpu_s: float
    processes: int


def snapshot() -> Snapshot:
    """Memory and CPU time of this process tree now. CPU includes children already reaped by a process of
    the tree (their time moves into the parent's ``children_*``), so it only grows while the tree lives."""
    me = psutil.Process()
    try:
        tree = [me, *me.children(recursive=True)]
    except psutil.Error:
        tree = [me]
    found = Snapshot(0, 0, 0.0, 0)
    for proc in tree:
        try:
            with proc.oneshot():
                memory, times = proc.memory_full_info(), proc.cpu_times()
        except psutil.Error:
            continue  # exited between the listing and the read
        found.processes += 1
        found.pss += memory.pss
        found.rss += memory.rss
        found.cpu_s += times.user + times.system + times.children_user + times.children_system
    return found


def machine_busy_s() -> float:
    """CPU seconds all processes on the machine have used so far (not idle, I/O wait or steal)."""
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system + times.irq + times.softirq)


class Sampler:
    """A thread that calls :meth:`sample` every ``interval_s`` while the ``with`` block runs; ``_current``
    is the phase being measured (None between phases), guarded by ``_lock``. Peak memory is the highest
    sample, so a spike shorter than the interval may be missed."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        raise NotImplementedError


class TreeSampler(Sampler):
    """This process tree sampled as a whole; :meth:`phase` measures one stretch of work."""

    def __init__(self, interval_s: float = 0.5) -> None:
        super().__init__(interval_s)
        self._current: Phase | None = None

    def _record(self, snap: Snapshot) -> None:
        with self._lock:
            if (phase := self._current) is not None:
                phase.peak_pss = max(phase.peak_pss, snap.pss)
                phase.peak_rss = max(phase.peak_rss, snap.rss)
                phase.peak_processes = max(phase.peak_processes, snap.processes)

    def sample(self) -> None:
        self._record(snapshot())

    @contextmanager
    def phase(self, name: str) -> Iterator[Phase]:
        """Measure the body; garbage is collected first, so one phase's leftovers are not the next one's peak."""
        gc.collect()
        start, machine_before = snapshot(), machine_busy_s()
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
            phase.machine_cpu_s = machine_busy_s() - machine_before
            with self._lock:
                self._current = None


def settle(timeout_s: float = 60.0, quiet_cores: float = 0.2) -> float:
    """Wait until this process tree is quiet (Ray and its workers shutting down): seconds waited."""
    started = time.perf_counter()
    last, quiet = snapshot().cpu_s, 0
    while quiet < 3 and time.perf_counter() - started < timeout_s:
        time.sleep(1.0)
        now = snapshot().cpu_s
        quiet = quiet + 1 if now - last < quiet_cores else 0
        last = now
    return time.perf_counter() - started


@dataclass
class RoleUsage:
    """One phase of processes followed by role: CPU seconds per role, peak memory of some."""

    name: str
    seconds: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)
    machine_cpu_s: float = 0.0  # all CPUs busy, every process on the machine
    peak_rss: dict[str, int] = field(default_factory=dict)
    peak_pss: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "cpu_seconds": {role: round(value, 2) for role, value in self.cpu_s.items()},
            # CPU the processes above did not use: other work on the machine, kernel threads, ...
            "other_cpu_seconds": round(max(0.0, self.machine_cpu_s - sum(self.cpu_s.values())), 2),
            "peak_rss_gib": {role: round(value / GIB, 3) for role, value in self.peak_rss.items()},
            "peak_pss_gib": {role: round(value / GIB, 3) for role, value in self.peak_pss.items()},
        }


class ProcessWatch(Sampler):
    """CPU seconds per process and phase, and peak RSS/PSS of some, for paths that run in processes this
    one did not all start (the embedded broker and S3 server): followed by role and pid, not as a tree."""

    def __init__(self, interval_s: float = 0.5) -> None:
        super().__init__(interval_s)
        self.roles: dict[str, psutil.Process] = {}
        self.memory_roles: set[str] = set()
        self.phases: list[RoleUsage] = []
        self.overall = RoleUsage("overall")
        self._current: RoleUsage | None = None

    def add(self, role: str, pid: int | None, *, memory: bool = False) -> None:
        """Follow ``pid`` as ``role``; nothing when it is unknown (a server that is not local) or gone."""
        if pid is None:
            return
        try:
            self.roles[role] = psutil.Process(pid)
        except psutil.Error:
            return
        if memory:
            self.memory_roles.add(role)

    def sample(self) -> None:
        for role in list(self.memory_roles):
            try:
                memory = self.roles[role].memory_full_info()
            except psutil.Error:
                continue
            with self._lock:
                for usage in (self.overall, self._current):
                    if usage is not None:
                        usage.peak_rss[role] = max(usage.peak_rss.get(role, 0), memory.rss)
                        usage.peak_pss[role] = max(usage.peak_pss.get(role, 0), memory.pss)

    def _cpu(self) -> dict[str, float]:
        found = {}
        for role, process in self.roles.items():
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            found[role] = times.user + times.system
        return found

    @contextmanager
    def phase(self, name: str) -> Iterator[RoleUsage]:
        usage = RoleUsage(name)
        before, machine_before = self._cpu(), machine_busy_s()
        with self._lock:
            self._current = usage
        self.sample()
        started = time.perf_counter()
        try:
            yield usage
        finally:
            usage.seconds = time.perf_counter() - started
            self.sample()
            after = self._cpu()
            usage.cpu_s = {role: max(0.0, after[role] - before[role]) for role in after if role in before}
            usage.machine_cpu_s = machine_busy_s() - machine_before
            with self._lock:
                self._current = None
            self.phases.append(usage)
