"""SparkProvider's background start: get() waits for the start and the warm-up, a failure surfaces in the
caller's thread, and nothing starts a second session meanwhile (a stand-in start; no JVM here)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from mdslab.settings import Settings
from mdslab.workloads.lake import build_registry
from mdslab.workloads.pipeline.step_runtime import SparkProvider
from mdslab.workloads.pipeline.warm_up import placeholder_row


class CountingProvider(SparkProvider):
    """Starts a stand-in session after ``delay`` seconds; counts starts."""

    def __init__(self, delay: float = 0.0, fail: bool = False, own_thread: bool = False) -> None:
        super().__init__(Settings(), own_thread=own_thread)
        self.starts, self.delay, self.fail = 0, delay, fail
        self.started_on: list[threading.Thread] = []

    def _start(self) -> None:
        self.starts += 1
        self.started_on.append(threading.current_thread())
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("no JVM")
        self._spark, self.started_in_s = object(), self.delay


def test_get_waits_for_the_background_start_and_warm_up() -> None:
    provider = CountingProvider(delay=0.3)
    warmed: list[Any] = []

    def warm_up(session: Any) -> float:
        time.sleep(0.2)
        warmed.append(session)
        return 0.2

    thread = provider.start_in_background(warm_up)
    session = provider.get()
    assert warmed == [session] and provider.warmed_in_s == 0.2
    assert provider.starts == 1
    assert provider.waited_s >= 0.4  # the caller was blocked by both, and says so
    # Ray's processes die with the thread that started them (PR_SET_PDEATHSIG): it waits for close()
    time.sleep(0.2)
    assert thread.is_alive()
    provider.close()
    thread.join(2)
    assert not thread.is_alive()


def test_concurrent_gets_start_one_session() -> None:
    provider = CountingProvider(delay=0.2)
    provider.start_in_background()
    sessions: list[Any] = []
    callers = [threading.Thread(target=lambda: sessions.append(provider.get())) for _ in range(3)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert provider.starts == 1 and len(set(map(id, sessions))) == 1
    provider.close()


def test_a_background_failure_is_raised_by_the_next_get_and_a_later_get_retries() -> None:
    provider = CountingProvider(fail=True)
    thread = provider.start_in_background()
    with pytest.raises(RuntimeError, match="no JVM"):
        provider.get()
    with pytest.raises(RuntimeError, match="no JVM"):  # started again, in the caller's thread this time
        provider.get()
    assert provider.starts == 2
    provider.close()
    thread.join(2)
    assert not thread.is_alive()


def test_a_shared_session_starts_once_in_a_thread_that_outlives_the_callers_until_close() -> None:
    """What the orchestrators' tasks share (mdslab.orchestration.tasks.process_spark): Ray's processes die
    with the thread that started them, so the start must not happen on a task's thread."""
    provider = CountingProvider(delay=0.1, own_thread=True)
    sessions: list[Any] = []
    task = threading.Thread(target=lambda: sessions.append(provider.get()))
    task.start()
    task.join()
    assert provider.get() is sessions[0] and provider.starts == 1
    (starter,) = provider.started_on
    assert starter is not task and starter is not threading.current_thread() and starter.is_alive()
    provider.close()
    starter.join(timeout=5)
    assert not starter.is_alive()


def test_a_shared_session_that_fails_to_start_raises_in_the_caller_and_a_later_get_retries() -> None:
    provider = CountingProvider(fail=True, own_thread=True)
    with pytest.raises(RuntimeError, match="no JVM"):
        provider.get()
    provider.fail = False
    assert provider.get() is not None and provider.starts == 2
    provider.close()


def test_tasks_of_one_process_share_one_provider_per_compute_settings() -> None:
    from mdslab.orchestration.tasks import process_spark

    settings = Settings()
    other = settings.model_copy(
        update={"compute": settings.compute.model_copy(update={"ray_address": "ray://h:10001"})}
    )
    assert process_spark(settings) is process_spark(Settings())
    assert process_spark(other) is not process_spark(settings)


def test_placeholder_rows_fill_every_column_of_every_registered_table() -> None:
    for spec in build_registry():
        row = placeholder_row(spec.schema)
        assert row.num_rows == 1 and row.schema == spec.schema
        assert all(column.null_count == 0 for column in row.columns), spec.name
