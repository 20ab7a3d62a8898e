"""``mdslab up / down / status`` for the embedded profile: real servers on 127.0.0.1, no Docker.

Start order matters: the Kafka broker keeps its log in S3, so S3 comes first and its buckets exist
before the broker starts; PostgreSQL and the document store are independent and start alongside S3.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from mdslab import database, objectstore
from mdslab.errors import ConfigurationError, ServiceUnavailableError
from mdslab.polling import wait_until
from mdslab.services import health
from mdslab.services.layout import EmbeddedLayout
from mdslab.services.ports import require_free_port
from mdslab.services.programs import (
    ProgramSpec,
    initialize_postgres,
    mongo_program,
    postgres_program,
    postgres_system_user,
    seaweedfs_program,
    tansu_program,
)
from mdslab.services.supervisor import Supervisor, render_config
from mdslab.settings import Profile, Settings

log = logging.getLogger(__name__)

Step = Callable[[str], None]
PGVECTOR = "vector"


@dataclass(frozen=True)
class ServiceReport:
    service: str
    endpoint: str
    healthy: bool
    detail: str
    state: str = "external"
    pid: int = 0
    uptime_s: int = 0
    log_file: str = ""


def _require_embedded(settings: Settings) -> None:
    if settings.profile is not Profile.EMBEDDED:
        raise ConfigurationError(
            "the 'services' profile uses servers you start yourself (`nix run .#services` or "
            "`docker compose -f compose/docker-compose.yml up -d`); `mdslab up` only starts the embedded ones"
        )
    for name, (host, _port) in _public_endpoints(settings).items():
        if host not in ("127.0.0.1", "localhost"):
            raise ConfigurationError(
                f"embedded {name} serves on 127.0.0.1, but its endpoint points at {host}: "
                "fix the endpoint or set MDSLAB_PROFILE=services"
            )


def _public_endpoints(settings: Settings) -> dict[str, tuple[str, int]]:
    return {
        "s3": settings.s3.host_port,
        "kafka": settings.kafka.first_host_port,
        "postgres": (settings.postgres.host, settings.postgres.port),
        "mongo": settings.mongo.host_port,
    }


def _programs(settings: Settings, layout: EmbeddedLayout, pg_user: str | None) -> list[ProgramSpec]:
    return [
        seaweedfs_program(settings, layout),
        postgres_program(settings, layout, pg_user),
        tansu_program(settings, layout),
        mongo_program(settings, layout),
    ]


def _check_ports_free(settings: Settings, layout: EmbeddedLayout) -> None:
    wanted = [(name, port) for name, (_h, port) in _public_endpoints(settings).items()]
    wanted += [("embedded internal", port) for port in layout.ports.all()]
    for name, port in wanted:
        fix = (
            f"set MDSLAB_EMBEDDED__PORT_BASE to a free range (now {layout.ports.base})"
            if name == "embedded internal"
            else "stop it, or move the endpoint (`mdslab config` shows the variable to set)"
        )
        require_free_port("127.0.0.1", port, what=name, fix=fix)


def _wait_healthy(
    supervisor: Supervisor, name: str, probe: Callable[[], health.Health], timeout_s: float
) -> health.Health:
    results: list[health.Health] = []

    def answered() -> bool:
        results.append(probe())
        if results[-1].ok:
            return True
        info = supervisor.info(name)
        if info.state not in ("RUNNING", "STARTING"):
            raise ServiceUnavailableError(
                f"{name} exited ({info.state}) before answering; last log line: "
                f"{supervisor.log_tail(name) or '(empty)'} [{info.log_file}]"
            )
        return False

    if not wait_until(answered, timeout_s=timeout_s, interval_s=0.25):
        last = results[-1]
        raise ServiceUnavailableError(
            f"{name} did not answer at {last.endpoint} within {timeout_s:.0f}s ({last.detail}); "
            f"see {supervisor.info(name).log_file}"
        )
    return results[-1]


def up(settings: Settings, *, on_step: Step = lambda _msg: None) -> list[ServiceReport]:
    """Start (or resume) the embedded services and create buckets and the database. Idempotent."""
    _require_embedded(settings)
    layout = EmbeddedLayout.from_settings(settings)
    layout.make_dirs()
    supervisor = Supervisor(layout)
    pg_user = postgres_system_user()
    programs = _programs(settings, layout, pg_user)
    timeout = settings.embedded.startup_timeout_s

    if supervisor.is_running():
        if layout.supervisor_config.read_text() != render_config(layout, programs):
            raise ConfigurationError(
                f"embedded services in {layout.state_dir} run with other settings: `mdslab down` first"
            )
    else:
        _check_ports_free(settings, layout)
        if initialize_postgres(settings, layout, pg_user):
            on_step("initialized PostgreSQL data directory")
        supervisor.start_daemon(programs)

    on_step("starting object storage (SeaweedFS), PostgreSQL and the document store (MongoDB protocol)")
    supervisor.start("s3")
    supervisor.start("postgres")
    supervisor.start("mongo")
    _wait_healthy(supervisor, "s3", lambda: health.probe_s3(settings), timeout)
    client = objectstore.s3_client(settings.s3)
    buckets = [settings.kafka.broker_bucket, settings.lake.raw_bucket, settings.lake.curated_bucket]
    if created := objectstore.ensure_buckets(client, buckets):
        on_step(f"created buckets {', '.join(created)}")

    on_step("starting the Kafka-protocol broker (Tansu)")
    supervisor.start("kafka")
    _wait_healthy(supervisor, "postgres", lambda: health.probe_postgres(settings), timeout)
    if database.ensure_database(settings.postgres, settings.postgres.database, extensions=(PGVECTOR,)):
        on_step(f"created database {settings.postgres.database} with pgvector")
    _wait_healthy(supervisor, "kafka", lambda: health.probe_kafka(settings), timeout)
    _wait_healthy(supervisor, "mongo", lambda: health.probe_mongo(settings), timeout)

    reports = status(settings)
    _write_state(layout, reports)
    return reports


def _write_state(layout: EmbeddedLayout, reports: list[ServiceReport]) -> None:
    state = {
        "written_at": datetime.now(UTC).isoformat(),
        "state_dir": str(layout.state_dir),
        "services": [asdict(report) for report in reports],
    }
    layout.state_file.write_text(json.dumps(state, indent=2) + "\n")


def status(settings: Settings) -> list[ServiceReport]:
    """Health of every endpoint; for the embedded profile also the process state from supervisord."""
    probes = health.probe_all(settings)
    processes = {}
    if settings.profile is Profile.EMBEDDED:
        supervisor = Supervisor(EmbeddedLayout.from_settings(settings))
        if supervisor.is_running():
            processes = {info.name: info for info in supervisor.all_info()}
    reports = []
    for probe in probes:
        info = processes.get(probe.service)
        reports.append(
            ServiceReport(
                service=probe.service,
                endpoint=probe.endpoint,
                healthy=probe.ok,
                detail=probe.detail,
                state=info.state if info else ("external" if settings.profile is Profile.SERVICES else "STOPPED"),
                pid=info.pid if info else 0,
                uptime_s=info.uptime_s if info else 0,
                log_file=info.log_file if info else "",
            )
        )
    return reports


def down(settings: Settings) -> list[str]:
    """Stop the processes this state dir's supervisord started; returns their names."""
    _require_embedded(settings)
    layout = EmbeddedLayout.from_settings(settings)
    supervisor = Supervisor(layout)
    if not supervisor.is_running():
        return []
    running = [info.name for info in supervisor.all_info() if info.state == "RUNNING"]
    supervisor.shutdown()
    layout.state_file.unlink(missing_ok=True)
    return running
