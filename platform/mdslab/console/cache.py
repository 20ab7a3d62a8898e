"""A value read in the background, and read again there once it is older than its age limit, so that a page
waits for a slow read at most once, before the first value exists: the lake's figures take ~1 s of Delta
log reads on S3 (one open per table; 3-4 s on a busy 2-core machine), which no page load should pay. A
server starts the first read when it starts; a caller shows the value's age with it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class Refreshing(Generic[T]):
    """``read()``'s last result. Once it is ``max_age_s`` old, the next ``get`` starts one background read
    and returns the previous result meanwhile. Before the first result, ``get`` waits for it (and raises
    what the read raised; the next ``get`` tries again). A later failed read keeps the previous result for
    another ``max_age_s`` (the read should report its own failures in its value, as the console's panels do).
    """

    def __init__(self, read: Callable[[], T], *, max_age_s: float, name: str = "refresh") -> None:
        self._read = read
        self.max_age_s = max_age_s
        self._name = name
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._value: T | None = None
        self._failure: Exception | None = None
        self._read_at = 0.0
        self._reading = False

    def start(self) -> None:
        """Start a background read now, unless one runs (a server at start-up: its first page need not wait)."""
        with self._lock:
            self._start_locked()

    def get(self) -> T:
        with self._lock:
            if self._value is None:
                if self._failure is not None or not self._reading:
                    self._start_locked()
                while self._value is None and self._failure is None:
                    self._done.wait()
                if self._failure is not None:
                    raise self._failure
            elif time.monotonic() - self._read_at >= self.max_age_s:
                self._start_locked()
            assert self._value is not None
            return self._value

    def _start_locked(self) -> None:
        if not self._reading:
            self._reading, self._failure = True, None
            threading.Thread(target=self._refresh, name=self._name, daemon=True).start()

    def _refresh(self) -> None:
        try:
            value = self._read()
        except Exception as exc:  # the first read's failure goes to its waiters; a later one to the log
            with self._lock:
                first = self._value is None
                self._failure = exc if first else None
                self._read_at, self._reading = time.monotonic(), False
                self._done.notify_all()
            if not first:
                log.exception("%s: reading again failed; the previous value stays", self._name)
            return
        with self._lock:
            self._value, self._read_at, self._reading = value, time.monotonic(), False
            self._done.notify_all()
