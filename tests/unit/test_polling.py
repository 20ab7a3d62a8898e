"""The one poll-until-deadline loop: true as soon as the condition holds, false after the deadline
(with a last look at it), and a condition's exception ends the wait."""

from __future__ import annotations

import time

import pytest

from mdslab.polling import wait_until


def test_true_at_once_without_sleeping() -> None:
    calls: list[float] = []
    assert wait_until(lambda: calls.append(time.monotonic()) is None, timeout_s=10, interval_s=5)
    assert len(calls) == 1


def test_true_once_the_condition_holds() -> None:
    answers = iter([False, False, True])
    calls = []

    def condition() -> bool:
        calls.append(1)
        return next(answers)

    assert wait_until(condition, timeout_s=10, interval_s=0.01)
    assert len(calls) == 3


def test_false_after_the_deadline_with_a_last_look() -> None:
    calls: list[float] = []
    started = time.monotonic()
    assert not wait_until(lambda: bool(calls.append(time.monotonic())), timeout_s=0.2, interval_s=0.05)
    assert calls[-1] - started >= 0.2  # the last call is at (or after) the deadline, not before it
    assert len(calls) >= 2  # at the start and at the deadline, at least


def test_an_exception_from_the_condition_ends_the_wait() -> None:
    def condition() -> bool:
        raise RuntimeError("the service exited")

    with pytest.raises(RuntimeError, match="exited"):
        wait_until(condition, timeout_s=10, interval_s=0.01)
