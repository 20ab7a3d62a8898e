"""Files and folders only this account can read: the state dir holds the whole embedded lake, the
services' credentials and their logs.

Created private from the start (not written, then chmodded: a reader could open the file in between).
A folder keeps the search bit for others when something granted it (PostgreSQL, run as its own account
when the lab runs as root, must traverse to its data), never read or write."""

from __future__ import annotations

import os
from pathlib import Path


def private_dir(path: Path) -> Path:
    """``path`` (and missing parents inside it) as 0700, or 0701 where others were granted traverse."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777
    wanted = 0o700 | (mode & 0o001)
    if mode != wanted:
        path.chmod(wanted)
    return path


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to a file that is 0600 before the first byte lands in it."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # an existing file keeps its mode through O_CREAT
        os.write(descriptor, text.encode())
    finally:
        os.close(descriptor)
    return path
