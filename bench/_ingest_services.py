"""One ingest run's own world: its topics, consumer group, buckets and API key, and the ``mdslab``
subprocesses (the API and the stream consumer) that run against them.

bench/ingest.py isolates every run so its figures never mix with other data: this module makes the
isolated settings, starts, watches and stops the services, and deletes what the run created.
"""

from __future__ import annotations

import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from mdslab import eventbus, objectstore
from mdslab.settings import LakeSettings, Settings


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
    own = [b for b in (settings.lake.raw_bucket, settings.lake.curated_bucket) if b.startswith(tag)]  # never others'
    return problems + objectstore.remove_buckets(objectstore.s3_client(settings.s3), own)
