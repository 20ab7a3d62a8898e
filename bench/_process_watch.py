"""CPU seconds and peak memory per process of the ingest path (this script, the API, the consumer,
the Kafka broker, the S3 server), per phase of bench/ingest.py.

The ingest path runs in separate processes that this script did not all start (the embedded broker
and S3 server), so they are followed by role and pid rather than as one process tree (_measure.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psutil
from _measure import GIB, machine_busy_s


def listener_pid(port: int) -> int | None:
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return int(conn.pid)
    except psutil.Error:
        pass
    return None


@dataclass
class PhaseUsage:
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


class ProcessWatch:
    """CPU seconds per process (role) and phase, and peak RSS/PSS of the API and the consumer,
    sampled every ``interval_s`` in a thread (spikes shorter than that may be missed)."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self.roles: dict[str, psutil.Process] = {}
        self.memory_roles: set[str] = set()
        self.phases: list[PhaseUsage] = []
        self.overall = PhaseUsage("overall")
        self._current: PhaseUsage | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="process-watch", daemon=True)

    def add(self, role: str, pid: int | None, *, memory: bool = False) -> None:
        if pid is None:
            return
        try:
            self.roles[role] = psutil.Process(pid)
        except psutil.Error:
            return
        if memory:
            self.memory_roles.add(role)

    def __enter__(self) -> ProcessWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample_memory(self) -> None:
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

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample_memory()

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
    def phase(self, name: str) -> Iterator[PhaseUsage]:
        usage = PhaseUsage(name)
        before, machine_before = self._cpu(), machine_busy_s()
        with self._lock:
            self._current = usage
        self._sample_memory()
        started = time.perf_counter()
        try:
            yield usage
        finally:
            usage.seconds = time.perf_counter() - started
            self._sample_memory()
            after = self._cpu()
            usage.cpu_s = {role: max(0.0, after[role] - before[role]) for role in after if role in before}
            usage.machine_cpu_s = machine_busy_s() - machine_before
            with self._lock:
                self._current = None
            self.phases.append(usage)
