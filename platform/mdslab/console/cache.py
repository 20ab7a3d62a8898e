"""A value read again in the background once it is older than its age limit, so that a page never waits
for a slow read but the very first: the lake's figures take ~1 s of Delta log reads on S3 (one open per
table), which no page load should pay. A caller shows the value's age with it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class Refreshing(Generic[T]):
    """``read()``'s last result; once it is ``max_age_s`` old, the next ``get`` starts one background read
    and returns the previous result meanwhile. A failed background read keeps the previous result for
    another ``max_age_s`` (the read should report its own failures in its value, as the console's panels do)."""

    def __init__(self, read: Callable[[], T], *, max_age_s: float, name: str = "refresh") -> None:
        self._read = read
        self.max_age_s = max_age_s
        self._name = name
        self._lock = threading.Lock()
        self._value: T | None = None
        self._read_at = 0.0
        self._reading = False

    def get(self) -> T:
        with self._lock:
            if self._value is None:  # the first read: every caller waits for it
                self._value, self._read_at = self._read(), time.monotonic()
            elif time.monotonic() - self._read_at >= self.max_age_s and not self._reading:
                self._reading = True
                threading.Thread(target=self._refresh, name=self._name, daemon=True).start()
            return self._value

    def _refresh(self) -> None:
        try:
            value = self._read()
        except Exception:  # a background thread has no caller to raise to
            log.exception("%s: reading again failed; the previous value stays", self._name)
            with self._lock:  # tried again once the value is max_age_s old again
                self._read_at, self._reading = time.monotonic(), False
            return
        with self._lock:
            self._value, self._read_at, self._reading = value, time.monotonic(), False
