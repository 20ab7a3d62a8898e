"""Headless Chromium for tests that look at a page as a person would: Debian's `chromium`, installed by
`tools/system-deps.sh` (like Prometheus), run with every host name but 127.0.0.1 unresolvable, so a page
that needs the internet (a CDN) shows that it does. Pages to click through are driven with Playwright
pointed at the same executable (Playwright's own browser download is not reachable here)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def _executable() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("no `chromium` on PATH: `bash tools/system-deps.sh` installs it (Debian), or `nix develop`")
    return found


# --no-sandbox: Chromium's sandbox refuses to run as root (CI containers); the pages are our own
FLAGS = ["--no-sandbox", "--disable-gpu", OFFLINE]


def _chromium() -> list[str]:
    return [_executable(), "--headless", *FLAGS, "--virtual-time-budget=15000"]


@contextmanager
def browser_page(*, width: int = 1400, height: int = 1000) -> Iterator[tuple[Any, list[str]]]:
    """A Playwright page in headless Chromium, and the list its console errors and uncaught exceptions
    are appended to as they happen (a test clears it between steps that expect none)."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_executable(), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
            yield page, errors
        finally:
            browser.close()


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
