"""`mdslab notebook`: JupyterLab on 127.0.0.1 over the lab's notebooks, with a kernel in the lab's
environment and settings."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer

from mdslab.cli.context import console, one_line_errors, settings
from mdslab.cli.foreground import run_in_foreground
from mdslab.errors import ConfigurationError
from mdslab.services.ports import require_free_port


def notebooks_dir() -> Path:
    """notebooks/ of the checkout this package runs from (an editable install, as `make setup` makes)."""
    import mdslab

    found = Path(mdslab.__file__).resolve().parents[2] / "notebooks"
    if not found.is_dir():
        raise ConfigurationError(f"no notebooks/ next to {found.parent}: run mdslab from a checkout of the lab")
    return found


@one_line_errors
def notebook(
    port: Annotated[
        int | None, typer.Option(help="JupyterLab's port on 127.0.0.1 (default: MDSLAB_CONSOLE__NOTEBOOK_PORT, 8888).")
    ] = None,
    folder: Annotated[
        Path | None, typer.Option("--dir", help="Open this folder instead of the lab's notebooks/.")
    ] = None,
) -> None:
    """Run JupyterLab in the foreground (Ctrl-C stops) on 127.0.0.1 with the lab's notebooks:
    01 explore the lakehouse (tables, versions, SQL, time travel, quarantine reasons, plots of gold);
    02 the ML deep dive (gold features, training, the MLflow runs and registry, scoring);
    03 the RAG deep dive (index, ask, check citations against the lake, evaluation).
    Its Python kernel runs in the lab's environment with the lab's settings (the same MDSLAB_* variables
    and state dir as this command), so `load_settings()` in a notebook finds this lab. The URL with its
    token is printed."""
    root = folder or notebooks_dir()
    if not root.is_dir():
        raise ConfigurationError(f"--dir {root} is not a folder")
    current = settings()
    port = port or current.console.notebook_port
    require_free_port("127.0.0.1", port, what="JupyterLab", fix="pass --port")
    token = secrets.token_urlsafe(24)
    console.print(
        f"JupyterLab on http://127.0.0.1:{port}/lab?token={token} (notebooks in {root}). Ctrl-C stops.",
        highlight=False,
        soft_wrap=True,
    )
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0",
    ]  # fmt: skip
    if os.geteuid() == 0:  # containers and CI run as root; Jupyter refuses that unless told
        command.append("--allow-root")
    run_in_foreground(command, env=os.environ | current.environment())
