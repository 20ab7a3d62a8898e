"""Where the embedded services keep their files, and which loopback ports they use."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from mdslab.services.private import private_dir
from mdslab.settings import Settings

# Unix socket paths are limited to 107 bytes; deep state dirs fall back to a short path in /tmp.
_MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class InternalPorts:
    """Ports the servers open besides their public endpoint, laid out from ``embedded.port_base``."""

    base: int

    @property
    def seaweed_master(self) -> int:
        return self.base

    @property
    def seaweed_volume(self) -> int:
        return self.base + 1

    @property
    def seaweed_filer(self) -> int:
        return self.base + 2

    @property
    def seaweed_grpc(self) -> tuple[int, int, int, int]:
        """master, volume, filer, s3 gRPC ports."""
        return self.base + 3, self.base + 4, self.base + 5, self.base + 6

    @property
    def seaweed_metrics(self) -> int:
        return self.base + 7

    @property
    def seaweed_admin(self) -> int:
        return self.base + 8

    @property
    def seaweed_admin_grpc(self) -> int:
        # SeaweedFS' maintenance worker dials admin port + 10000 whatever the flag says.
        return self.base + 8 + 10000

    def all(self) -> list[int]:
        return [*range(self.base, self.base + 9), self.seaweed_admin_grpc]


@dataclass(frozen=True)
class EmbeddedLayout:
    state_dir: Path
    ports: InternalPorts

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddedLayout:
        return cls(settings.state_dir, InternalPorts(settings.embedded.port_base))

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def supervisor_config(self) -> Path:
        return self.run_dir / "supervisord.conf"

    @property
    def supervisor_pidfile(self) -> Path:
        return self.run_dir / "supervisord.pid"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "services.json"

    def socket_path(self, name: str) -> Path:
        """A Unix socket path short enough for the kernel's limit."""
        return self._short(f"{name}.sock", reserve=0)

    def socket_dir(self, name: str) -> Path:
        """A directory for servers that name their own socket inside it (PostgreSQL: .s.PGSQL.PORT)."""
        return self._short(name, reserve=len("/.s.PGSQL.65535"))

    def _short(self, name: str, *, reserve: int) -> Path:
        path = self.run_dir / name
        if len(str(path)) + reserve <= _MAX_SOCKET_PATH:
            return path
        digest = hashlib.sha1(str(self.state_dir).encode()).hexdigest()[:10]
        return Path("/tmp") / f"mdslab-{digest}-{name}"

    def make_dirs(self) -> None:
        """The state dir and its folders, private (see :mod:`mdslab.services.private`)."""
        for path in (self.state_dir, self.data_dir, self.log_dir, self.run_dir):
            private_dir(path)
