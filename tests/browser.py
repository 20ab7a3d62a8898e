"""Headless Chromium for tests that look at a page as a person would: Debian's `chromium`, installed by
`tools/system-deps.sh` (like Prometheus), run with every host name but 127.0.0.1 unresolvable, so a page
that needs the internet (a CDN) shows that it does."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def _chromium() -> list[str]:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("no `chromium` on PATH: `bash tools/system-deps.sh` installs it (Debian), or `nix develop`")
    # --no-sandbox: Chromium's sandbox refuses to run as root (CI containers); the pages are our own
    return [found, "--headless", "--no-sandbox", "--disable-gpu", OFFLINE, "--virtual-time-budget=15000"]


def rendered_dom(url: str) -> str:
    """The page's DOM after its scripts ran (Chromium's --dump-dom, with up to 15 s of virtual time)."""
    done = subprocess.run([*_chromium(), "--dump-dom", url], capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def screenshot(url: str, path: Path, *, width: int = 1280, height: int = 1600) -> Path:
    """A PNG of the rendered page, kept as a test artifact (and for a person to look at)."""
    done = subprocess.run(
        [*_chromium(), f"--window-size={width},{height}", f"--screenshot={path}", url],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and path.is_file(), done.stderr[-2000:]
    return path
