"""The HTTP load of bench/ingest.py: a small asyncio HTTP/1.1 keep-alive client POSTing transactions,
closed loop (as fast as answers come) and open loop (a fixed schedule). ~10 us of CPU per request where
httpx.AsyncClient takes ~800 us: the load generator shares two cores with what it measures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from mdslab.workloads.ingestion.events import TRANSACTIONS

ROUTE = f"/v1/{TRANSACTIONS.name}"

T = TypeVar("T")


class HttpError(Exception):
    """A response this client cannot read (no Content-Length)."""


class Connection:
    """One keep-alive HTTP/1.1 connection; POSTs a body and reads a Content-Length response."""

    def __init__(self, host: str, port: int, api_key: str) -> None:
        self.host, self.port = host, port
        self._head = (
            f"POST {ROUTE} HTTP/1.1\r\nHost: {host}:{port}\r\nX-API-Key: {api_key}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    @property
    def usable(self) -> bool:
        """Not closed by either side (uvicorn closes connections idle for 5 s)."""
        return not (self.reader is None or self.writer is None or self.reader.at_eof() or self.writer.is_closing())

    async def post(self, body: bytes) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        self.writer.write(self._head + str(len(body)).encode() + b"\r\n\r\n" + body)
        if len(body) > 65_536:
            await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise HttpError(f"response without Content-Length: {head[:200]!r}")
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


@dataclass
class Requests:
    """What the client saw, one entry per request (times from ``time.perf_counter``)."""

    scheduled: list[float] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)
    accepted_ids: list[str] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    connections: int = 0  # most connections open at once
    event_times_ms: dict[str, float] = field(default_factory=dict)  # accepted event id -> its event time
    started_wall: float = 0.0  # time.time() at perf_counter() == started_perf
    started_perf: float = 0.0
    fresh: bool = True  # measure the freshness of these events in bronze (not for the warm-up)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    @property
    def accepted(self) -> int:
        return len(self.accepted_ids)

    def wall(self, perf: float) -> float:
        return self.started_wall + (perf - self.started_perf)

    def record(self, scheduled: float, sent: float, done: float, event_times_ms: dict[str, float]) -> None:
        """One accepted request's times, and the event time of each event it carried."""
        self.scheduled.append(scheduled)
        self.sent.append(sent)
        self.done.append(done)
        self.event_times_ms.update(event_times_ms)


def _accepted_ids(status: int, reply: bytes, ids: list[str], requests: Requests) -> bool:
    if status != 202:
        requests.error(f"HTTP {status}")
        return False
    answer = orjson.loads(reply)
    if answer.get("accepted") != len(ids):
        requests.error("202 with a wrong count")
        return False
    requests.accepted_ids += ids
    return True


async def closed_loop(
    host: str,
    port: int,
    api_key: str,
    bodies: list[tuple[bytes, list[str]]],
    clients: int,
    on_done: Callable[[int], None],
) -> Requests:
    """``clients`` connections, each POSTing the next body as soon as its previous answer arrived."""
    requests = Requests(connections=clients)
    connections = [await Connection(host, port, api_key).open() for _ in range(clients)]
    queue = iter(bodies)

    async def client(connection: Connection) -> None:
        for body, ids in queue:
            sent = time.perf_counter()
            try:
                status, reply = await connection.post(body)
            except (OSError, asyncio.IncompleteReadError, HttpError) as exc:
                requests.error(type(exc).__name__)
                connection.close()
                connection = await Connection(host, port, api_key).open()
                continue
            done = time.perf_counter()
            if _accepted_ids(status, reply, ids, requests):
                requests.record(sent, sent, done, dict.fromkeys(ids, requests.wall(sent) * 1000.0))
            on_done(len(ids))
        connection.close()

    requests.started_wall, requests.started_perf = time.time(), time.perf_counter()
    await asyncio.gather(*(client(connection) for connection in connections))
    return requests


async def open_loop(
    host: str,
    port: int,
    api_key: str,
    documents: list[dict[str, Any]],
    rate: float,
    max_connections: int,
    on_done: Callable[[int], None],
) -> Requests:
    """One single-event POST every 1/``rate`` s on a fixed schedule, whatever the answers do; each
    event's ``event_time`` is its scheduled send time. A request waits for a free connection when
    ``max_connections`` are busy, and that wait counts in its latency."""
    requests = Requests()
    idle: list[Connection] = [await Connection(host, port, api_key).open() for _ in range(min(16, max_connections))]
    slots = asyncio.Semaphore(max_connections)  # in use + idle never exceeds it: one opens only when none is idle
    opened = requests.connections = len(idle)
    tasks: set[asyncio.Task[None]] = set()

    async def one(document: dict[str, Any], scheduled: float, event_ms: float) -> None:
        nonlocal opened
        body = orjson.dumps(document)
        async with slots:
            while idle and not idle[-1].usable:
                idle.pop().close()
                opened -= 1
            conn = idle.pop() if idle else None
            try:
                if conn is None:
                    conn = Connection(host, port, api_key)
                    opened += 1
                    requests.connections = max(requests.connections, opened)
                    await conn.open()
                sent = time.perf_counter()
                status, reply = await conn.post(body)
            except (OSError, asyncio.IncompleteReadError, HttpError) as exc:
                requests.error(type(exc).__name__)
                if conn is not None:
                    conn.close()
                    opened -= 1
                return
            done = time.perf_counter()
            idle.append(conn)
        if _accepted_ids(status, reply, [document["event_id"]], requests):
            requests.record(scheduled, sent, done, {document["event_id"]: event_ms})
        on_done(1)

    requests.started_wall, requests.started_perf = time.time(), time.perf_counter()
    start = requests.started_perf + 0.05
    for index, document in enumerate(documents):
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        wall_ms = round(requests.wall(scheduled) * 1000.0)
        stamp = datetime.fromtimestamp(wall_ms // 1000, tz=UTC).replace(microsecond=wall_ms % 1000 * 1000)
        document["event_time"] = stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        task = asyncio.create_task(one(document, scheduled, wall_ms))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*list(tasks))
    for conn in idle:
        conn.close()
    return requests
