"""The state dir (the embedded lake, credentials, logs) is private from the start: folders 0700 (0701
where PostgreSQL was granted traverse), credential files 0600 before their first byte."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mdslab.services.layout import EmbeddedLayout, InternalPorts
from mdslab.services.private import write_private
from mdslab.services.secrets import ensure_secrets
from mdslab.settings import Settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def _open_umask() -> object:
    previous = os.umask(0o000)  # the loosest a user could have: nothing may rely on the umask
    yield None
    os.umask(previous)


def test_a_new_state_dir_and_its_folders_are_private(tmp_path: Path) -> None:
    layout = EmbeddedLayout(tmp_path / "state", InternalPorts(20000))
    layout.make_dirs()
    for path in (layout.state_dir, layout.data_dir, layout.log_dir, layout.run_dir):
        assert _mode(path) == 0o700, path


def test_an_existing_open_state_dir_is_tightened_keeping_a_granted_traverse(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "data").mkdir(parents=True, mode=0o755)
    state.chmod(0o755)
    (state / "data").chmod(0o751)  # o+x granted for PostgreSQL's own account
    EmbeddedLayout(state, InternalPorts(20000)).make_dirs()
    assert (_mode(state), _mode(state / "data")) == (0o701, 0o701)


def test_generated_secrets_are_written_private(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("MDSLAB_"):
            monkeypatch.delenv(key)
    settings = Settings(state_dir=tmp_path / "state")
    assert ensure_secrets(settings)
    assert _mode(settings.secrets_file) == 0o600 and _mode(settings.secrets_file.parent) == 0o700


def test_rewriting_an_open_file_makes_it_private(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, "new")
    assert (_mode(path), path.read_text()) == (0o600, "new")
