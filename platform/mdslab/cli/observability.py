"""`mdslab prometheus`: Prometheus on this host, scraping the lab's processes with the repo's rules."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer
import yaml

from mdslab.cli.context import console, one_line_errors, settings
from mdslab.cli.foreground import run_in_foreground
from mdslab.errors import ConfigurationError, ServiceUnavailableError
from mdslab.services.ports import require_free_port
from mdslab.telemetry import prometheus_config


def _observability_dir() -> Path:
    """observability/ of the checkout this package runs from (an editable install, as `make setup` makes)."""
    import mdslab

    found = Path(mdslab.__file__).resolve().parents[2] / "observability"
    if not (found / "prometheus" / "prometheus.yml").is_file():
        raise ConfigurationError(f"no observability/ next to {found.parent}: run mdslab from a checkout of the lab")
    return found


@one_line_errors
def prometheus(
    port: Annotated[
        int | None, typer.Option(help="Prometheus's own port (default: MDSLAB_CONSOLE__PROMETHEUS_PORT, 9090).")
    ] = None,
    retention: Annotated[str, typer.Option(help="How long to keep samples.")] = "7d",
) -> None:
    """Run Prometheus in the foreground (Ctrl-C stops), scraping `mdslab serve`, `mdslab stream` and Ray at
    the ports the settings give them, with the alert rules of observability/prometheus/alerts.yml.

    Data goes to the state dir's `prometheus` folder. Needs the `prometheus` program (`apt-get install prometheus`, or
    `nix develop`). Grafana and its dashboards come with the Compose stack or `nix run .#services`.
    """
    current = settings()
    port = port or current.console.prometheus_port
    binary = shutil.which("prometheus")
    if binary is None:
        raise ServiceUnavailableError("no `prometheus` on PATH: `apt-get install prometheus` or `nix develop`")
    require_free_port("127.0.0.1", port, what="Prometheus", fix="pass --port")
    folder = _observability_dir()
    host = current.api.host
    config = prometheus_config(
        folder / "prometheus" / "prometheus.yml",
        {
            "prometheus": f"127.0.0.1:{port}",
            "mdslab-api": f"{host}:{current.api.port}",
            "mdslab-consumer": f"{host}:{current.stream.metrics_port}",
            "ray": f"127.0.0.1:{current.compute.ray_metrics_port}",
        },
        rules=folder / "prometheus" / "alerts.yml",
    )
    home = current.state_dir / "prometheus"
    home.mkdir(parents=True, exist_ok=True)
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    console.print(
        f"Prometheus on http://127.0.0.1:{port} (targets: /targets, alerts: /alerts); data in {home}. Ctrl-C stops.",
        highlight=False,
        soft_wrap=True,
    )
    command = [
        binary, f"--config.file={home / 'prometheus.yml'}", f"--storage.tsdb.path={home / 'data'}",
        f"--storage.tsdb.retention.time={retention}", f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-remote-write-receiver",
    ]  # fmt: skip
    run_in_foreground(command)
