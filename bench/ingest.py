"""Benchmark: the ingestion path, HTTP API -> Kafka -> stream consumer -> bronze Delta table.

One run measures, against the same broker and lake:

1. ceiling: a raw confluent-kafka producer (acks=all, idempotent, the API publisher's lz4/linger
   settings) sending the same payloads to a topic of its own; events/s until the last is acknowledged,
   then its acknowledgement latency at each ``--rate`` (the floor under the API's latency).
2. batch POSTs: a few keep-alive clients POST lists of ``--batch-size`` transactions as fast as the
   API answers; events/s accepted by the API (202) and end to end, from the first POST until the
   bronze commit that holds the last accepted event (the consumer runs all along).
3. single POSTs: the same with one event per request and more concurrent clients.
4. fixed rate: single-event POSTs on an open-loop schedule (``--rate`` req/s for ``--duration`` s),
   latency measured from each request's scheduled send time, so a stalled server is charged for the
   requests queued behind it (no coordinated omission).

Every step also gives bronze freshness: per event, from its event time (the fixed-rate client stamps
the scheduled send time into ``event_time``; the closed-loop clients' events count from when their
request was sent) to the timestamp of the Delta commit that made its row queryable, found row by row
through the Kafka offsets each commit records.

The API (``mdslab serve``) and the consumer (``mdslab stream``) run as subprocesses with their own
topics, consumer group, buckets and API key, so a run never mixes with other data; the embedded
services are started if needed and left running. Topics and buckets of the run are deleted at the
end unless ``--keep``. The HTTP load comes from a small asyncio HTTP/1.1 keep-alive client in this
process: ~10 us of CPU per request where httpx.AsyncClient takes ~800 us (measured here against a
stub server), which matters when the load generator shares two cores with what it measures.

Run ``python bench/ingest.py --help`` for the options. Results: tables on the console and JSON in
bench/results/. Benchmarks are not tests: nothing here fails on a slow figure.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import orjson
import psutil
import pyarrow as pa
from _measure import GIB, load_average, machine
from confluent_kafka import Producer
from pydantic import SecretStr
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from mdslab import eventbus, objectstore
from mdslab.settings import LakeSettings, Settings, load_settings
from mdslab.workloads.ingestion.events import TRANSACTIONS, Topics

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BRONZE = TRANSACTIONS.bronze_table
ROUTE = f"/v1/{TRANSACTIONS.name}"
TARGETS = {"batch_end_to_end_events_per_s": 20_000, "rate_p99_ms": 50.0, "rate_req_per_s": 500, "freshness_p95_s": 5.0}
console = Console()
if not console.is_terminal:
    console = Console(width=170)  # a log file or a pipe: do not squeeze the tables to 80 columns

T = TypeVar("T")


# --- one run's own topics, group, buckets and subprocesses -----------------------------------------


def isolated(base: Settings, tag: str) -> Settings:
    """Settings whose topics, consumer group, buckets and API key belong to this run only."""
    lake = LakeSettings(raw_bucket=f"{tag}-raw", curated_bucket=f"{tag}-curated")
    objectstore.ensure_buckets(objectstore.s3_client(base.s3), [lake.raw_bucket, lake.curated_bucket])
    return base.model_copy(
        update={
            "lake": lake,
            "kafka": base.kafka.model_copy(update={"topic_prefix": f"{tag}."}),
            "stream": base.stream.model_copy(update={"group_id": f"{tag}-bronze", "metrics_port": 0}),
            "api": base.api.model_copy(update={"api_key": SecretStr(secrets.token_urlsafe(24))}),
        }
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a subprocess (``mdslab ...``) see exactly these settings."""
    masks = {"********", "(not set)", ""}
    return {name: value for name, value in settings.env_items() if value not in masks} | {
        "MDSLAB_S3__SECRET_KEY": settings.s3.secret_key.get_secret_value(),
        "MDSLAB_POSTGRES__PASSWORD": settings.postgres.password.get_secret_value(),
        "MDSLAB_API__API_KEY": settings.api.api_key.get_secret_value(),
    }


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    """A ``mdslab`` subprocess with its output in a log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check(self) -> None:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")

    def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM (the consumer writes the batch in hand, uvicorn drains), SIGKILL if it hangs."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


def start(name: str, args: list[str], env: dict[str, str], logs: Path) -> Service:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "mdslab"), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return Service(name, process, log)


def wait_until_ready(api: Service, url: str, timeout_s: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        api.check()
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the API at {url} was not ready within {timeout_s:.0f} s:\n{api.tail()}")


def cleanup(settings: Settings, topics: list[str], tag: str) -> list[str]:
    """Delete the run's topics and buckets; returns what could not be deleted."""
    from minio.deleteobjects import DeleteObject

    problems = []
    admin = eventbus.admin_client(settings.kafka)
    try:
        for name, future in admin.delete_topics(topics, operation_timeout=15).items():
            try:
                future.result()
            except Exception as exc:
                problems.append(f"topic {name}: {exc}")
    except Exception as exc:
        problems.append(f"topics: {exc}")
    client = objectstore.s3_client(settings.s3)
    for bucket in (settings.lake.raw_bucket, settings.lake.curated_bucket):
        if not bucket.startswith(tag):  # never anything but this run's own buckets
            continue
        try:
            names = [obj.object_name for obj in client.list_objects(bucket, recursive=True) if obj.object_name]
            errors = list(client.remove_objects(bucket, [DeleteObject(name) for name in names]))
            if errors:
                problems.append(f"bucket {bucket}: {len(errors)} objects not deleted")
            else:
                client.remove_bucket(bucket)
        except Exception as exc:
            problems.append(f"bucket {bucket}: {exc}")
    return problems


# --- CPU and memory of the processes involved --------------------------------------------------------


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

    @staticmethod
    def _machine_busy() -> float:
        """CPU seconds all processes used so far (Linux counts guest time inside user; steal is the host's)."""
        times = psutil.cpu_times()._asdict()
        idle = ("idle", "iowait", "steal", "guest", "guest_nice")
        return sum(value for name, value in times.items() if name not in idle)

    @contextmanager
    def phase(self, name: str) -> Iterator[PhaseUsage]:
        usage = PhaseUsage(name)
        before, machine_before = self._cpu(), self._machine_busy()
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
            usage.machine_cpu_s = self._machine_busy() - machine_before
            with self._lock:
                self._current = None
            self.phases.append(usage)


# --- the events ------------------------------------------------------------------------------------


@dataclass
class Events:
    """Simulated valid transactions (no planted defects): payload bytes and their partition keys."""

    payloads: list[bytes]
    keys: list[bytes]

    @classmethod
    def simulate(cls, count: int, seed: int) -> Events:
        from mdslab.workloads.simulator import SimulationConfig, simulate

        data = simulate(SimulationConfig(transactions=max(count, 1_000), seed=seed, invalid_share=0.0))
        payloads = [value.encode() for value in data.transactions.column("payload").to_pylist()[:count]]
        keys = [str(orjson.loads(payload)[TRANSACTIONS.key_field]).encode() for payload in payloads]
        return cls(payloads, keys)

    def take(self, count: int) -> Events:
        taken = Events(self.payloads[:count], self.keys[:count])
        del self.payloads[:count], self.keys[:count]
        return taken


# --- the ceiling: a raw producer -------------------------------------------------------------------


def ceiling_producer(settings: Settings) -> Producer:
    """A raw producer with the API publisher's settings (``EventPublisher``), connected and ready."""
    producer = Producer(
        eventbus.client_config(
            settings.kafka,
            **{
                "client.id": "mdslab-bench-ceiling",
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 500_000,
            },
        )
    )
    return producer


def raw_throughput(
    producer: Producer, topic: str, events: Events, on_progress: Callable[[int], None]
) -> dict[str, Any]:
    """The same payloads, keys and headers as the API publishes, flat out; timed from the first
    produce until the last acknowledgement."""
    failed = [0]

    def report(err: Any, _msg: Any) -> None:
        if err is not None:
            failed[0] += 1

    headers = TRANSACTIONS.headers
    producer.produce(topic, events.payloads[0], events.keys[0], headers=headers, on_delivery=report)
    producer.flush(30)  # connection, metadata and the idempotent producer id: not part of the figure
    failed[0] = 0
    started = time.perf_counter()
    for index, (key, value) in enumerate(zip(events.keys, events.payloads, strict=True), start=1):
        while True:
            try:
                producer.produce(topic, value, key, headers=headers, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.005)
        if index % 10_000 == 0:
            producer.poll(0)
            on_progress(10_000)
    remaining = producer.flush(120)
    seconds = time.perf_counter() - started
    on_progress(len(events.payloads) % 10_000)
    acked = len(events.payloads) - failed[0] - remaining
    return {
        "events": len(events.payloads),
        "acknowledged": acked,
        "failed": failed[0] + remaining,
        "seconds": round(seconds, 3),
        "events_per_s": round(acked / seconds) if seconds else 0,
    }


def raw_rate(
    producer: Producer, topic: str, events: Events, rate: float, on_progress: Callable[[int], None]
) -> dict[str, Any]:
    """One message every 1/``rate`` s on a fixed schedule; latency from the scheduled time to the
    delivery report (the broker's acknowledgement): the floor under the API's fixed-rate latency."""
    headers = TRANSACTIONS.headers
    count = len(events.payloads)
    acked = np.full(count, np.nan)
    failed = [0]

    def reporter(index: int) -> Callable[[Any, Any], None]:
        def report(err: Any, _msg: Any) -> None:
            if err is None:
                acked[index] = time.perf_counter()
            else:
                failed[0] += 1
            on_progress(1)

        return report

    start = time.perf_counter() + 0.05
    scheduled = start + np.arange(count) / rate
    for index, (key, value) in enumerate(zip(events.keys, events.payloads, strict=True)):
        while (wait := scheduled[index] - time.perf_counter()) > 0:
            if wait < 0.002:  # poll() counts in whole milliseconds: 0 would spin
                time.sleep(wait)
            else:
                producer.poll(wait - 0.001)  # serves delivery reports while it waits
        producer.produce(topic, value, key, headers=headers, on_delivery=reporter(index))
        producer.poll(0)
    producer.flush(60)
    done = ~np.isnan(acked)
    return {
        "rate": rate,
        "messages": count,
        "acknowledged": int(done.sum()),
        "failed": failed[0] + int(count - done.sum()),
        "latency_ms": percentiles((acked[done] - scheduled[done]) * 1000.0),
    }


# --- a small HTTP/1.1 client -----------------------------------------------------------------------


class HttpError(Exception):
    pass


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

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    @property
    def accepted(self) -> int:
        return len(self.accepted_ids)

    def wall(self, perf: float) -> float:
        return self.started_wall + (perf - self.started_perf)


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
                requests.scheduled.append(sent)
                requests.sent.append(sent)
                requests.done.append(done)
                sent_ms = requests.wall(sent) * 1000.0
                requests.event_times_ms.update(dict.fromkeys(ids, sent_ms))
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
    opened = requests.connections = len(idle)
    freed = asyncio.Condition()
    tasks: set[asyncio.Task[None]] = set()

    async def connection() -> Connection:
        nonlocal opened
        async with freed:
            while True:
                while idle:
                    candidate = idle.pop()
                    if candidate.usable:
                        return candidate
                    candidate.close()
                    opened -= 1
                if opened < max_connections:
                    opened += 1
                    requests.connections = max(requests.connections, opened)
                    break
                await freed.wait()
        try:
            return await Connection(host, port, api_key).open()
        except OSError:
            opened -= 1
            raise

    async def release(conn: Connection | None) -> None:
        nonlocal opened
        async with freed:
            if conn is not None:
                idle.append(conn)
            else:
                opened -= 1
            freed.notify()

    async def one(document: dict[str, Any], scheduled: float, event_ms: float) -> None:
        body = orjson.dumps(document)
        conn: Connection | None = None
        try:
            conn = await connection()
            sent = time.perf_counter()
            status, reply = await conn.post(body)
        except (OSError, asyncio.IncompleteReadError, HttpError) as exc:
            requests.error(type(exc).__name__)
            if conn is not None:
                conn.close()
            await release(None)
            return
        done = time.perf_counter()
        await release(conn)
        if _accepted_ids(status, reply, [document["event_id"]], requests):
            requests.scheduled.append(scheduled)
            requests.sent.append(sent)
            requests.done.append(done)
            requests.event_times_ms[document["event_id"]] = event_ms
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


# --- bronze ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Commit:
    version: int
    timestamp_ms: int
    ends: dict[int, int]  # partition -> next offset after this commit


class BronzeWatch:
    """Follows ``bronze.transactions``: row count now, and each commit's time and Kafka offsets."""

    def __init__(self, settings: Settings) -> None:
        from mdslab.workloads.pipeline.runner import lakehouse

        self.lake = lakehouse(settings)
        self.topic = Topics(settings.kafka.topic_prefix).of(TRANSACTIONS)
        self._table: Any = None

    def rows(self) -> int:
        if self._table is None:
            if not self.lake.exists(BRONZE):
                return 0
            self._table = self.lake.delta(BRONZE)
        else:
            self._table.update_incremental()
        return int(self._table.count())

    def wait_for(self, rows: int, timeout_s: float, services: list[Service], poll_s: float = 0.05) -> tuple[bool, int]:
        """Poll until the table holds ``rows``; returns (reached, rows seen)."""
        deadline = time.monotonic() + timeout_s
        seen = self.rows()
        while seen < rows and time.monotonic() < deadline:
            for service in services:
                service.check()
            time.sleep(poll_s)
            seen = self.rows()
        return seen >= rows, seen

    def commits(self) -> list[Commit]:
        """Every commit that moved an offset of the topic, oldest first."""
        table = self.lake.delta(BRONZE)
        prefix = f"kafka:{self.topic}:"
        found = []
        for entry in table.history():
            raw = entry.get("mdslab")
            meta = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
            ends = {
                int(app.removeprefix(prefix)): int(end)
                for app, end in (meta.get("offsets") or {}).items()
                if app.startswith(prefix)
            }
            if ends and "timestamp" in entry:
                found.append(Commit(int(entry["version"]), int(entry["timestamp"]), ends))
        return sorted(found, key=lambda commit: commit.version)

    def last_commit_ms(self) -> int:
        return max(commit.timestamp_ms for commit in self.commits())


def commit_times(commits: list[Commit], partitions: list[int], offsets: list[int]) -> np.ndarray:
    """For each row (partition, offset): the timestamp (ms) of the commit that wrote it."""
    by_partition: dict[int, tuple[list[int], list[int]]] = {}
    for commit in commits:
        for partition, end in commit.ends.items():
            ends, stamps = by_partition.setdefault(partition, ([], []))
            ends.append(end)
            stamps.append(commit.timestamp_ms)
    out = np.empty(len(offsets), dtype=np.float64)
    for index, (partition, offset) in enumerate(zip(partitions, offsets, strict=True)):
        ends, stamps = by_partition[partition]
        out[index] = stamps[bisect.bisect_right(ends, offset)]
    return out


def _millis(column: pa.ChunkedArray) -> np.ndarray:
    micros = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False)
    return micros.astype(np.float64) / 1000.0


def freshness(watch: BronzeWatch, event_times_ms: dict[str, float]) -> dict[str, Any]:
    """Per event: event_time -> the Kafka create timestamp (the API's producer), -> the consumer's
    batch start (``ingested_at``), -> the commit that made the row queryable."""
    rows = watch.lake.read_table(
        BRONZE, columns=["event_id", "kafka_partition", "kafka_offset", "kafka_timestamp", "ingested_at"]
    )
    ids = rows.column("event_id").to_pylist()
    keep = [index for index, event_id in enumerate(ids) if event_id in event_times_ms]
    rows = rows.take(pa.array(keep, type=pa.int64()))
    event_ms = np.array([event_times_ms[ids[index]] for index in keep], dtype=np.float64)
    committed = commit_times(
        watch.commits(), rows.column("kafka_partition").to_pylist(), rows.column("kafka_offset").to_pylist()
    )
    kafka_ms, batch_ms = _millis(rows.column("kafka_timestamp")), _millis(rows.column("ingested_at"))
    return {
        "events": len(keep),
        "event_to_queryable_s": percentiles((committed - event_ms) / 1000.0),
        "event_to_kafka_s": percentiles((kafka_ms - event_ms) / 1000.0),
        "kafka_to_batch_start_s": percentiles((batch_ms - kafka_ms) / 1000.0),
        "batch_start_to_commit_s": percentiles((committed - batch_ms) / 1000.0),
    }


def percentiles(values: np.ndarray | list[float], scale: float = 1.0) -> dict[str, float]:
    data = np.asarray(values, dtype=np.float64) * scale
    if not len(data):
        return {}
    p50, p95, p99 = np.percentile(data, [50, 95, 99])
    return {
        "p50": round(float(p50), 4),
        "p95": round(float(p95), 4),
        "p99": round(float(p99), 4),
        "max": round(float(data.max()), 4),
        "mean": round(float(data.mean()), 4),
    }


# --- the steps -------------------------------------------------------------------------------------


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
    figures = {"events": len(events.payloads), "batch_size": batch_size, "clients": clients}
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


# --- reporting -------------------------------------------------------------------------------------


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}x" if value and base else "-"


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _met(ok: bool | None) -> str:
    if ok is None:
        return "-"
    return "[green]met[/]" if ok else "[red]not met[/]"


def _judged_rate(steps: dict[str, Any]) -> dict[str, Any]:
    """The fixed-rate run the targets speak of (500 req/s), else the first one."""
    rates = steps.get("rates") or [{}]
    return next((run for run in rates if run.get("rate") == TARGETS["rate_req_per_s"]), rates[0])


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    steps = report["steps"]
    batch = steps.get("batch", {})
    batch_rate = batch.get("end_to_end_events_per_s")
    judged = _judged_rate(steps)
    rate, p99 = judged.get("rate"), judged.get("latency_ms", {}).get("p99")
    at_target = rate == TARGETS["rate_req_per_s"]  # at another --rate the figure is printed but not judged
    found = []
    found.append(
        {
            "target": f">= {TARGETS['batch_end_to_end_events_per_s']:,} events/s end to end with batch POSTs",
            "measured": f"{batch_rate:,} events/s" if batch_rate else "-",
            "met": None if batch_rate is None else batch_rate >= TARGETS["batch_end_to_end_events_per_s"],
        }
    )
    found.append(
        {
            "target": f"single-event p99 < {TARGETS['rate_p99_ms']:.0f} ms at {TARGETS['rate_req_per_s']} req/s",
            "measured": f"{p99:,.1f} ms at {rate:.0f} req/s" if p99 is not None and rate else "-",
            "met": None if p99 is None or not at_target else p99 < TARGETS["rate_p99_ms"],
        }
    )
    for label, step, judge in (
        (f"at {rate or 0:.0f} req/s", judged, at_target),
        ("batch POSTs, full speed", batch, True),
    ):
        p95 = step.get("freshness", {}).get("event_to_queryable_s", {}).get("p95")
        found.append(
            {
                "target": f"freshness p95 < {TARGETS['freshness_p95_s']:.0f} s ({label})",
                "measured": f"{p95:,.2f} s" if p95 is not None else "-",
                "met": None if p95 is None or not judge else p95 < TARGETS["freshness_p95_s"],
            }
        )
    return found


def print_report(report: dict[str, Any]) -> None:
    steps, info = report["steps"], report["machine"]
    ceiling = steps.get("ceiling", {}).get("events_per_s")
    console.print()
    console.print(
        "[bold]Ingest benchmark[/]: HTTP API -> Kafka -> stream consumer -> bronze.transactions, "
        "everything on this host",
        highlight=False,
    )
    stream = report["settings"]["stream"]
    console.print(
        f"machine: {info['logical_cpus']} logical CPUs, {info['memory_gib']} GiB; load average "
        f"{info['load_average_at_start'][0]} at start, {report['load_average_at_end'][0]} at end | "
        f"{report['settings']['partitions']} partitions per topic | consumer micro-batch: "
        f"{stream['batch_max_messages']:,} messages or {stream['batch_max_seconds']} s | API: 1 uvicorn worker",
        style="dim",
        highlight=False,
    )
    _print_throughput(steps, ceiling)
    _print_latency(steps)
    _print_freshness(steps)
    table = Table(title="Targets (2 cores)", title_justify="left")
    for column in ("target", "measured", "verdict"):
        table.add_column(column, justify="left" if column == "target" else "right")
    for target in report["targets"]:
        table.add_row(target["target"], target["measured"], _met(target["met"]))
    console.print(table)
    _print_processes(report)
    check = report.get("bronze_check")
    if check:
        verdict = "[green]yes[/]" if check["exactly_once"] else "[red]NO[/]"
        console.print(
            f"bronze holds every accepted event exactly once: {verdict} ({check['bronze_rows']:,} rows, "
            f"{check['distinct_event_ids']:,} distinct event ids, {check['accepted']:,} accepted, "
            f"{check['missing']:,} missing, {check['unexpected']:,} unexpected)",
            highlight=False,
        )
    console.print(
        "How to read it: vs raw producer = events/s / the ceiling's events/s in this run (a raw "
        "confluent-kafka producer, same payloads, keys, headers and producer settings as the API's, "
        "to its own topic). API 202 = from the first request sent until the last 202 received. End to "
        "end = from the first request sent until the timestamp of the Delta commit holding the last "
        "accepted event (commitInfo.timestamp in the log, written by the consumer as it commits; the "
        "rows are queryable from that commit on). Fixed rate: open loop, latency measured from each "
        "request's scheduled send time (includes waiting for a free connection), client lag = scheduled "
        "-> actually written to the socket. Freshness: per accepted event, its event time (fixed rate: "
        "the scheduled send time, stamped into the payload as event_time; closed loop: when its request "
        "was sent) -> the commit that wrote its row, found through the Kafka offsets each commit "
        "records; all clocks are this host's. CPU seconds per process and step from /proc (Kafka broker "
        "and S3 server: the embedded ones); others = CPU every other process on the machine used "
        "meanwhile: a busy machine shows there.",
        style="dim",
        highlight=False,
    )


def _print_throughput(steps: dict[str, Any], ceiling: float | None) -> None:
    table = Table(title="Throughput", title_justify="left")
    for column in ("step", "events", "seconds", "events/s", "vs raw producer", "requests/s", "errors"):
        table.add_column(column, justify="left" if column == "step" else "right")
    if "ceiling" in steps:
        step = steps["ceiling"]
        table.add_row(
            "raw producer -> Kafka acked (ceiling)",
            _num(step["acknowledged"]),
            _num(step["seconds"], 2),
            _num(step["events_per_s"]),
            "1.00x",
            "-",
            _num(step["failed"]),
        )
    runs = [("batch POSTs", steps.get("batch")), ("single POSTs", steps.get("single"))]
    runs += [("fixed rate", run) for run in steps.get("rates", [])]
    for label, step in runs:
        if not step:
            continue
        closed = "batch_size" in step
        shape = (
            f"{step['batch_size']}/request, {step['clients']} clients"
            if closed
            else f"{step['rate']:.0f} req/s scheduled"
        )
        table.add_section()
        table.add_row(
            f"{label} ({shape}): API 202",
            _num(step["accepted_events"]),
            _num(step["accept_seconds"], 2),
            _num(step["accepted_events_per_s"]),
            _ratio(step["accepted_events_per_s"], ceiling),
            _num(step.get("achieved_requests_per_s", step["requests_per_s"]), 1),
            _num(sum(step["errors"].values())),
        )
        if closed:
            table.add_row(
                f"{label}: end to end into bronze",
                _num(step["accepted_events"]),
                _num(step.get("end_to_end_seconds"), 2),
                _num(step.get("end_to_end_events_per_s")),
                _ratio(step.get("end_to_end_events_per_s"), ceiling),
                "",
                "" if step["caught_up"] else "[red]not caught up[/]",
            )
    console.print(table)


def _print_latency(steps: dict[str, Any]) -> None:
    table = Table(title="Latency", title_justify="left")
    for column in ("what", "p50 ms", "p95 ms", "p99 ms", "max ms", "requests"):
        table.add_column(column, justify="left" if column == "what" else "right")

    def add(label: str, figures: dict[str, float] | None, count: int | None) -> None:
        if figures:
            table.add_row(label, *(f"{figures[key]:,.1f}" for key in ("p50", "p95", "p99", "max")), _num(count))

    raws = {run["rate"]: run for run in steps.get("raw_rates", [])}
    for run in steps.get("rates", []):
        add(f"single POST at {run['rate']:.0f} req/s, from scheduled send", run["latency_ms"], run["requests"])
        add("  of which waiting to be sent (client lag)", run.get("send_lag_ms"), run["requests"])
        raw = raws.pop(run["rate"], None)
        if raw:
            add(
                f"  raw producer at {raw['rate']:.0f} msg/s: scheduled -> acked", raw["latency_ms"], raw["acknowledged"]
            )
        table.add_section()
    for raw in raws.values():
        add(f"raw producer at {raw['rate']:.0f} msg/s: scheduled -> acked", raw["latency_ms"], raw["acknowledged"])
    for name, label in (("single", "single POST, closed loop"), ("batch", "batch POST, closed loop")):
        if name in steps:
            add(label, steps[name]["latency_ms"], steps[name]["requests"])
    console.print(table)


def _print_freshness(steps: dict[str, Any]) -> None:
    table = Table(
        title="Freshness, seconds p50 / p95: event time -> queryable in bronze, and its parts", title_justify="left"
    )
    for column in (
        "events of",
        "event -> queryable",
        "p99 / max",
        "event -> Kafka (API)",
        "-> consumer writes",
        "-> committed",
        "events",
    ):
        table.add_column(column, justify="left" if column == "events of" else "right")
    runs = [("batch POSTs", steps.get("batch")), ("single POSTs", steps.get("single"))]
    runs += [(f"fixed rate, {run['rate']:.0f} req/s", run) for run in steps.get("rates", [])]
    for label, step in runs:
        fresh = (step or {}).get("freshness")
        if not fresh:
            continue
        total = fresh["event_to_queryable_s"]

        def pair(figures: dict[str, float]) -> str:
            return f"{figures['p50']:.2f} / {figures['p95']:.2f}"

        table.add_row(
            label,
            pair(total),
            f"{total['p99']:.2f} / {total['max']:.2f}",
            pair(fresh["event_to_kafka_s"]),
            pair(fresh["kafka_to_batch_start_s"]),
            pair(fresh["batch_start_to_commit_s"]),
            _num(fresh["events"]),
        )
    console.print(table)


ROLES = {"client": "script", "api": "API", "consumer": "consumer", "kafka": "Kafka", "s3": "S3"}


def _print_processes(report: dict[str, Any]) -> None:
    phases = report["processes"]["phases"]
    if not phases:
        return
    roles = [role for role in ROLES if any(role in phase["cpu_seconds"] for phase in phases)]
    table = Table(
        title="CPU seconds per process (cores busy) and peak memory; script = this one (load, raw producer, polling)",
        title_justify="left",
    )
    table.add_column("phase")
    table.add_column("seconds", justify="right")
    for role in roles:
        table.add_column(ROLES[role], justify="right")
    table.add_column("sum", justify="right")
    table.add_column("others", justify="right")
    table.add_column("API peak PSS / RSS GiB", justify="right")
    table.add_column("consumer peak PSS / RSS GiB", justify="right")

    def cpu(value: float | None, seconds: float) -> str:
        if value is None:
            return "-"
        return f"{value:.1f} ({value / seconds:.2f})" if seconds else f"{value:.1f}"

    for phase in phases:
        seconds = phase["seconds"]
        cells = [phase["name"], f"{seconds:.1f}"]
        cells += [cpu(phase["cpu_seconds"].get(role), seconds) for role in roles]
        cells.append(cpu(sum(phase["cpu_seconds"].values()), seconds))
        cells.append(cpu(phase["other_cpu_seconds"], seconds))
        for role in ("api", "consumer"):
            pss, rss = phase["peak_pss_gib"].get(role), phase["peak_rss_gib"].get(role)
            cells.append("-" if pss is None else f"{pss:.2f} / {rss:.2f}")
        table.add_row(*cells)
    console.print(table)


# --- main ------------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    found = {}
    for package in ("confluent-kafka", "fastapi", "uvicorn", "uvloop", "httptools", "deltalake", "pyarrow", "pydantic"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/ingest.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--events",
        type=int,
        default=300_000,
        help="Events of the batch-POST step; the raw producer sends the same ones (default 300000).",
    )
    parser.add_argument("--batch-size", type=int, default=500, help="Events per batch POST (default 500).")
    parser.add_argument("--batch-clients", type=int, default=4, help="Concurrent batch clients (default 4).")
    parser.add_argument(
        "--single-events", type=int, default=10_000, help="Events of the single-POST step (default 10000)."
    )
    parser.add_argument("--single-clients", type=int, default=32, help="Concurrent single clients (default 32).")
    parser.add_argument(
        "--rate",
        type=float,
        nargs="+",
        default=[500.0],
        metavar="R",
        help="Requests/s of the fixed-rate step; several values run it once each, in this order (default 500).",
    )
    parser.add_argument("--duration", type=float, default=20.0, help="Seconds of each fixed-rate run (default 20).")
    parser.add_argument(
        "--max-connections",
        type=int,
        default=64,
        help="Most connections the fixed-rate client opens; beyond, requests wait (default 64).",
    )
    parser.add_argument("--seed", type=int, default=42, help="Simulation seed (default 42).")
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="Most seconds to wait for bronze to catch up per step (180)."
    )
    parser.add_argument("--keep", action="store_true", help="Keep the run's topics and buckets (default: delete).")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help=f"Where the JSON goes ({RESULTS_DIR}).")
    args = parser.parse_args(argv)
    if (
        args.events < 1_000
        or args.batch_size < 1
        or args.single_events < 1
        or min(args.rate) <= 0
        or args.duration <= 0
    ):
        parser.error("--events must be >= 1000, and --batch-size, --single-events, --rate, --duration positive")
    if min(args.batch_clients, args.single_clients, args.max_connections) < 1:
        parser.error("client and connection counts must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from mdslab.cli.services import ensure_services
    from mdslab.workloads.bootstrap import ensure_resources

    started_at = datetime.now(UTC)
    tag = f"bench-ingest-{started_at:%Y%m%dt%H%M%S}"
    rate_counts = [round(rate * args.duration) for rate in args.rate]
    rate_count = sum(rate_counts)
    report: dict[str, Any] = {
        "benchmark": "ingest",
        "started_at": started_at.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "versions": _versions(),
        "arguments": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "targets_set": TARGETS,
        "method": {
            "ceiling": "raw confluent-kafka producer, EventPublisher's settings, same payloads/keys/headers, "
            "timed from the first produce to the last acknowledgement (connection set up before)",
            "api_202": "first request sent -> last 202 received, asyncio HTTP/1.1 keep-alive client in this process",
            "end_to_end": "first request sent -> commitInfo.timestamp of the bronze commit holding the last accepted "
            "event",
            "latency": "open loop; from each request's scheduled send time to its complete response",
            "freshness": "event time (fixed rate: event_time = scheduled send time; closed loop: request sent) -> "
            "commitInfo.timestamp of the commit that wrote the row, mapped through the Kafka offsets recorded in "
            "each commit",
            "cpu": "user+system seconds per process from /proc; others = machine-wide busy CPU minus those",
            "memory": "RSS and PSS of the API and consumer processes, sampled every 0.5 s",
        },
        "steps": {},
    }
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    logs = Path(tempfile.mkdtemp(prefix="mdslab-bench-ingest-"))
    services: list[Service] = []
    settings: Settings | None = None
    run_topics: list[str] = []
    failed = False
    with progress, ProcessWatch() as watch:
        task = progress.add_task("starting services", total=None)

        def stage(text: str, total: float | None) -> Callable[[int], None]:
            progress.reset(task, description=text, total=total, completed=0)
            return lambda n: progress.advance(task, n)

        try:
            base = load_settings()
            ensure_services(base, on_step=lambda text: progress.update(task, description=text), quiet=True)
            base = load_settings()
            settings = isolated(base, tag)
            ensure_resources(settings)
            topics = Topics(settings.kafka.topic_prefix)
            ceiling_topic = f"{settings.kafka.topic_prefix}ceiling"
            run_topics = [*topics.events, topics.dead_letters, ceiling_topic]
            eventbus.ensure_topics(
                eventbus.admin_client(settings.kafka),
                [eventbus.TopicSpec(ceiling_topic, settings.kafka.default_partitions)],
            )
            report["settings"] = {
                "tag": tag,
                "partitions": settings.kafka.default_partitions,
                "stream": settings.stream.model_dump(mode="json"),
                "api": settings.api.model_dump(mode="json", exclude={"api_key"}),
            }
            kafka_port = settings.kafka.first_host_port[1]
            watch.add("client", os.getpid())
            watch.add("kafka", listener_pid(kafka_port))
            watch.add("s3", listener_pid(settings.s3.host_port[1]))

            stage(f"simulating {args.events + args.single_events + rate_count:,} transactions", None)
            events = Events.simulate(130 + args.events + args.single_events + rate_count, args.seed)
            warm = events.take(130)
            batch_events = events.take(args.events)
            single_events = events.take(args.single_events)
            rate_events = [events.take(count) for count in rate_counts]

            producer = ceiling_producer(settings)
            advance = stage("ceiling: raw producer, flat out", len(batch_events.payloads))
            with watch.phase("raw producer"):
                report["steps"]["ceiling"] = raw_throughput(producer, ceiling_topic, batch_events, advance)
            report["steps"]["raw_rates"] = []
            for rate in args.rate:
                raw_count = round(rate * min(args.duration, 5.0))
                advance = stage(f"raw producer at {rate:.0f} messages/s", raw_count)
                with watch.phase(f"raw at {rate:.0f}/s"):
                    raw_events = Events(batch_events.payloads[:raw_count], batch_events.keys[:raw_count])
                    report["steps"]["raw_rates"].append(raw_rate(producer, ceiling_topic, raw_events, rate, advance))
            del producer

            stage("starting the API and the consumer", None)
            env = os.environ | settings_env(settings) | {"MDSLAB_STREAM__METRICS_PORT": "0"}
            host = settings.api.host
            port = free_port(host)
            api = start("api", ["serve", "--host", host, "--port", str(port)], env, logs)
            services.append(api)
            consumer = start("consumer", ["stream"], env, logs)
            services.append(consumer)
            watch.add("api", api.process.pid, memory=True)
            watch.add("consumer", consumer.process.pid, memory=True)
            wait_until_ready(api, f"http://{host}:{port}")
            stack = Stack(settings, host, port, api, consumer, BronzeWatch(settings), args.timeout)
            stage("warm-up: through the whole path, waiting for the consumer's partitions", None)
            report["warm_up"] = warm_up(stack, warm)

            advance = stage(f"batch POSTs ({args.batch_size}/request)", len(batch_events.payloads))
            with watch.phase("batch POSTs"):
                report["steps"]["batch"], _ = step_closed(
                    stack, batch_events, args.batch_size, args.batch_clients, advance
                )
            advance = stage("single POSTs", len(single_events.payloads))
            with watch.phase("single POSTs"):
                report["steps"]["single"], _ = step_closed(stack, single_events, 1, args.single_clients, advance)
            report["steps"]["rates"] = []
            for rate, some in zip(args.rate, rate_events, strict=True):
                advance = stage(f"fixed rate: {rate:.0f} req/s for {args.duration:.0f} s", len(some.payloads))
                with watch.phase(f"POSTs at {rate:.0f}/s"):
                    figures = step_rate(stack, some, rate, args.max_connections, advance)
                report["steps"]["rates"].append(figures)

            stage("checking bronze", None)
            bronze_ids = stack.watch.lake.read_table(BRONZE, columns=["event_id"]).column("event_id").to_pylist()
            distinct = set(bronze_ids)
            accepted = stack.expected_rows
            report["bronze_check"] = {
                "bronze_rows": len(bronze_ids),
                "distinct_event_ids": len(distinct),
                "accepted": accepted,
                "missing": max(0, accepted - len(distinct)),
                "unexpected": max(0, len(distinct) - accepted),
                "exactly_once": len(bronze_ids) == len(distinct) == accepted,
            }
        except BaseException:
            failed = True
            raise
        finally:
            progress.update(task, description="stopping the API and the consumer")
            for service in reversed(services):
                code = service.stop()
                report.setdefault("exit_codes", {})[service.name] = code
            if failed:
                for service in services:
                    console.print(f"--- {service.name} log ({service.log}):\n{service.tail()}", highlight=False)
            else:
                shutil.rmtree(logs, ignore_errors=True)
            if settings is not None and not args.keep:
                progress.update(task, description="deleting the run's topics and buckets")
                report["cleanup_problems"] = cleanup(settings, run_topics, tag)
    report["load_average_at_end"] = [round(x, 2) for x in load_average()]
    report["processes"] = {
        "phases": [{"name": phase.name, **phase.as_dict()} for phase in watch.phases],
        "peak_rss_gib": {role: round(value / GIB, 3) for role, value in watch.overall.peak_rss.items()},
        "peak_pss_gib": {role: round(value / GIB, 3) for role, value in watch.overall.peak_pss.items()},
    }
    report["targets"] = targets(report)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"ingest-{started_at:%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_report(report)
    console.print(f"JSON: {out}", style="dim", highlight=False)
    if report.get("cleanup_problems"):
        console.print(f"cleanup: {'; '.join(report['cleanup_problems'])}", style="yellow", highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
