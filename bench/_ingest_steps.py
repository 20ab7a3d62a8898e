"""The measured steps of bench/ingest.py that go through the API: warm-up, closed-loop batch and
single POSTs, and the fixed-rate run; each turns what the client saw and what bronze shows into the
step's figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from _bronze_watch import BronzeWatch, freshness
from _http_load import Requests, closed_loop, open_loop, run_async
from _ingest_events import Events
from _ingest_services import Service
from _percentiles import percentiles

from mdslab.settings import Settings


@dataclass
class Stack:
    settings: Settings
    host: str
    port: int
    api: Service
    consumer: Service
    watch: BronzeWatch
    timeout_s: float
    expected_rows: int = 0  # accepted so far, all steps

    @property
    def api_key(self) -> str:
        return self.settings.api.api_key.get_secret_value()


def _client_figures(requests: Requests) -> dict[str, Any]:
    first = min(requests.sent) if requests.sent else 0.0
    last = max(requests.done) if requests.done else 0.0
    seconds = last - first
    return {
        "requests": len(requests.done),
        "connections": requests.connections,
        "accepted_events": requests.accepted,
        "errors": requests.errors,
        "accept_seconds": round(seconds, 3),
        "accepted_events_per_s": round(requests.accepted / seconds) if seconds > 0 else 0,
        "requests_per_s": round(len(requests.done) / seconds, 1) if seconds > 0 else 0,
        "latency_ms": percentiles(np.subtract(requests.done, requests.scheduled), scale=1000.0),
        "service_time_ms": percentiles(np.subtract(requests.done, requests.sent), scale=1000.0),
    }


def _into_bronze(stack: Stack, requests: Requests) -> dict[str, Any]:
    """Wait for bronze to hold every accepted event; end to end = first POST -> the commit of the last."""
    stack.expected_rows += requests.accepted
    reached, seen = stack.watch.wait_for(stack.expected_rows, stack.timeout_s, [stack.api, stack.consumer])
    figures: dict[str, Any] = {"bronze_rows_after": seen, "caught_up": reached}
    if reached and requests.sent:
        first_wall = requests.wall(min(requests.sent))
        seconds = stack.watch.last_commit_ms() / 1000.0 - first_wall
        figures["end_to_end_seconds"] = round(seconds, 3)
        figures["end_to_end_events_per_s"] = round(requests.accepted / seconds) if seconds > 0 else 0
        last_202 = requests.wall(max(requests.done))
        figures["last_202_to_last_commit_s"] = round(stack.watch.last_commit_ms() / 1000.0 - last_202, 3)
    return figures


def step_closed(
    stack: Stack,
    events: Events,
    batch_size: int,
    clients: int,
    on_done: Callable[[int], None],
    *,
    fresh: bool = True,
) -> tuple[dict[str, Any], Requests]:
    bodies = []
    for start in range(0, len(events.payloads), batch_size):
        chunk = events.payloads[start : start + batch_size]
        body = chunk[0] if batch_size == 1 else b"[" + b",".join(chunk) + b"]"
        bodies.append((body, [str(orjson.loads(payload)["event_id"]) for payload in chunk]))
    requests = run_async(closed_loop(stack.host, stack.port, stack.api_key, bodies, clients, on_done))
    figures: dict[str, Any] = {"events": len(events.payloads), "batch_size": batch_size, "clients": clients}
    figures |= _client_figures(requests)
    figures |= _into_bronze(stack, requests)
    if fresh and figures["caught_up"]:
        figures["freshness"] = freshness(stack.watch, requests.event_times_ms)
    return figures, requests


def step_rate(
    stack: Stack, events: Events, rate: float, max_connections: int, on_done: Callable[[int], None]
) -> dict[str, Any]:
    documents = [orjson.loads(payload) for payload in events.payloads]
    requests = run_async(open_loop(stack.host, stack.port, stack.api_key, documents, rate, max_connections, on_done))
    figures: dict[str, Any] = {"rate": rate, "scheduled_requests": len(documents), "max_connections": max_connections}
    figures |= _client_figures(requests)
    if requests.scheduled:
        span = max(requests.scheduled) - min(requests.scheduled)
        figures["achieved_requests_per_s"] = round((len(requests.done) - 1) / span, 1) if span > 0 else 0
        figures["send_lag_ms"] = percentiles(np.subtract(requests.sent, requests.scheduled), scale=1000.0)
    figures |= _into_bronze(stack, requests)
    if figures["caught_up"]:
        figures["freshness"] = freshness(stack.watch, requests.event_times_ms)
    return figures


def warm_up(stack: Stack, events: Events) -> dict[str, Any]:
    """A batch and a few singles through the whole path, until they are in bronze: connections open,
    the bronze table created, the consumer's partitions assigned. Not part of any figure."""
    started = time.perf_counter()
    _, batch = step_closed(stack, events.take(100), 100, 1, lambda _n: None, fresh=False)
    _, singles = step_closed(stack, events, 1, 2, lambda _n: None, fresh=False)
    return {
        "events": batch.accepted + singles.accepted,
        "seconds": round(time.perf_counter() - started, 2),
        "errors": {**batch.errors, **singles.errors},
    }
