"""The measuring of bench/train.py on top of _measure.py: a phase's figures plus the CPU the rest of
the machine used meanwhile, a path's figures from its phases, and waiting for Spark and Ray to go quiet.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from _measure import Phase, TreeSampler, machine_busy_s, snapshot


@dataclass
class Measured:
    """A phase of the measured process tree, and the CPU the rest of the machine used meanwhile."""

    phase: Phase
    machine_cpu_s: float = 0.0

    @property
    def others_cpu_s(self) -> float:
        return max(0.0, self.machine_cpu_s - self.phase.cpu_s)

    def as_dict(self) -> dict[str, Any]:
        return {**self.phase.as_dict(), "others_cpu_seconds": round(self.others_cpu_s, 2)}


@contextmanager
def measure(sampler: TreeSampler, name: str) -> Iterator[Measured]:
    gc.collect()
    before = machine_busy_s()
    with sampler.phase(name) as phase:
        measured = Measured(phase)
        yield measured
    measured.machine_cpu_s = machine_busy_s() - before


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


def path_figures(
    phases: dict[str, Measured],
    *,
    feature_build: tuple[str, ...],
    frame_load: tuple[str, ...],
    training: tuple[str, ...],
) -> dict[str, Any]:
    def seconds(names: tuple[str, ...]) -> float:
        return sum(phases[name].phase.seconds for name in names)

    measured = [entry.phase for entry in phases.values()]
    total = seconds(feature_build + frame_load + training)
    others = sum(entry.others_cpu_s for entry in phases.values())
    return {
        "feature_build_s": round(seconds(feature_build), 3),
        "frame_load_s": round(seconds(frame_load), 3),
        "training_s": round(seconds(training), 3),
        "total_s": round(total, 3),
        "cpu_s": round(sum(phase.cpu_s for phase in measured), 2),
        "others_cpu_s": round(others, 2),
        "others_cores": round(others / total, 2) if total else 0.0,
        "peak_pss_gib": round(max(phase.peak_pss for phase in measured) / 2**30, 3),
        "peak_rss_gib": round(max(phase.peak_rss for phase in measured) / 2**30, 3),
        "pss_at_start_gib": round(measured[0].start_pss / 2**30, 3),
        "peak_processes": max(phase.peak_processes for phase in measured),
        "phases": {name: entry.as_dict() for name, entry in phases.items()},
    }
