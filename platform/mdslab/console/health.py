"""Which of the lab's services and web UIs answer now, probed from the server with short timeouts.

Every address comes from the settings. The UIs the lab's own commands start (`mdslab serve`, `mlflow ui`,
`airflow up`, `notebook`, `spark history`, `prometheus`) listen on the host those commands bind, the
loopback address for all but the API (``MDSLAB_API__HOST``); the others are URL settings. All probes run
at once, each bounded by ``MDSLAB_CONSOLE__PROBE_TIMEOUT_S``, so a service that does not answer costs the
page that long once, and never an error: it is shown as down (or, for a UI started on demand, as not
running, with the command that starts it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from mdslab.services import health
from mdslab.settings import Settings

LOOPBACK = "127.0.0.1"  # where the lab's own UI commands listen (each binds it, whatever the profile)


@dataclass(frozen=True)
class WebUi:
    """A web UI the console links to: where a person opens it, what the console asks to know it is up."""

    name: str
    url: str
    probe_url: str
    start: str  # the command (or setting) that brings it up


@dataclass(frozen=True)
class ServiceState:
    name: str
    endpoint: str
    link: str | None  # a web UI's address; None for a service without one (S3, Kafka, PostgreSQL)
    up: bool
    detail: str  # "HTTP 200, 12 ms" or why it is down, in a few words
    start: str = ""
    required: bool = False  # the lab cannot work without it: shown as down, not as "not running"

    @property
    def state(self) -> str:
        if self.up:
            return "up"
        return "down" if self.required else "not running"


def web_uis(settings: Settings) -> list[WebUi]:
    """The lab's web UIs, at the addresses the settings give."""
    api = f"http://{settings.api.host}:{settings.api.port}"
    tracking = settings.ml.tracking_uri or ""
    mlflow = tracking.rstrip("/") if tracking.startswith("http") else f"http://{LOOPBACK}:{settings.ml.ui_port}"
    airflow = f"http://{settings.api.host}:{settings.orchestration.airflow_port}"
    prefect_api = settings.orchestration.prefect_api_url.rstrip("/")
    jupyter = f"http://{LOOPBACK}:{settings.console.notebook_port}"
    history = f"http://{LOOPBACK}:{settings.compute.spark_history_port}"
    prometheus = f"http://{LOOPBACK}:{settings.console.prometheus_port}"
    ray, grafana, marquez = (
        url.rstrip("/")
        for url in (settings.console.ray_dashboard_url, settings.console.grafana_url, settings.console.marquez_url)
    )
    uis = [
        WebUi("API (Swagger UI)", f"{api}/docs", f"{api}/healthz", "mdslab serve"),
        WebUi("MLflow", mlflow, f"{mlflow}/health", "mdslab mlflow ui"),
        WebUi("Airflow", airflow, f"{airflow}/api/v2/monitor/health", "mdslab airflow up"),
    ]
    if prefect_api:
        uis.append(WebUi("Prefect", prefect_api.removesuffix("/api"), f"{prefect_api}/health", "prefect server start"))
    uis += [
        WebUi("JupyterLab", f"{jupyter}/lab", f"{jupyter}/api/status", "mdslab notebook"),
        WebUi("Spark History Server", history, f"{history}/api/v1/version", "mdslab spark history"),
        WebUi("Ray dashboard", ray, f"{ray}/api/version", "a Ray cluster (MDSLAB_COMPUTE__RAY_ADDRESS) or Compose"),
        WebUi("Prometheus", prometheus, f"{prometheus}/-/healthy", "mdslab prometheus"),
        WebUi("Grafana", grafana, f"{grafana}/api/health", "the services profile (Compose or nix run .#services)"),
        WebUi("Marquez", marquez, marquez, "docker compose --profile lineage up -d"),
    ]
    return uis


def probe_ui(ui: WebUi, client: httpx.Client) -> ServiceState:
    """Up when anything answers HTTP below 500 (a 401/403 is a guarded UI that runs: Jupyter without its
    token); down with a few words on why otherwise. Never raises. One ``client`` serves every probe (a new
    one costs ~50 ms of CPU for its TLS context; its timeout bounds the probe)."""
    started = time.perf_counter()
    try:
        response = client.get(ui.probe_url)
    except httpx.HTTPError as exc:
        return ServiceState(ui.name, ui.url, ui.url, False, health.short_reason(exc), ui.start)
    ms = (time.perf_counter() - started) * 1000
    up = response.status_code < 500
    return ServiceState(ui.name, ui.url, ui.url, up, f"HTTP {response.status_code}, {ms:.0f} ms", ui.start)


def probe_client(settings: Settings) -> httpx.Client:
    """The client every probe of a console shares, bounded by ``MDSLAB_CONSOLE__PROBE_TIMEOUT_S``."""
    return httpx.Client(timeout=settings.console.probe_timeout_s)


def _core_probes(settings: Settings, timeout_s: float) -> list[Callable[[], health.Health]]:
    seconds = max(1, math.ceil(timeout_s))  # libpq's connect_timeout counts whole seconds
    return [
        lambda: health.probe_s3(settings, timeout_s=timeout_s),
        lambda: health.probe_kafka(settings, timeout_s=timeout_s),
        lambda: health.probe_postgres(settings, timeout_s=seconds),
        lambda: health.probe_mongo(settings, timeout_s=timeout_s),
    ]


def _core_state(probe: health.Health) -> ServiceState:
    detail = probe.detail if not probe.ok else f"{probe.detail}, {probe.latency_ms:.0f} ms"
    return ServiceState(probe.service, probe.endpoint, None, probe.ok, detail, "mdslab up", required=True)


def check_all(settings: Settings, client: httpx.Client, uis: list[WebUi] | None = None) -> list[ServiceState]:
    """S3, Kafka and PostgreSQL (their own protocols), then every web UI, all probed at once."""
    timeout_s = settings.console.probe_timeout_s
    uis = web_uis(settings) if uis is None else uis
    core = _core_probes(settings, timeout_s)
    with ThreadPoolExecutor(max_workers=len(core) + len(uis), thread_name_prefix="console-probe") as pool:
        core_done = [pool.submit(probe) for probe in core]
        uis_done = [pool.submit(probe_ui, ui, client) for ui in uis]
        return [_core_state(done.result()) for done in core_done] + [done.result() for done in uis_done]
