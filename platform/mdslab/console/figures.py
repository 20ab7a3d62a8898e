"""The lab's key figures, as `mdslab status` prints them and the console shows them: the API and the
stream consumer (from their Prometheus endpoints: up, requests, lag per topic), tables per layer, stale
gold, end-to-end freshness, each step's last run, the quality gate's last verdict and the RAG index's
freshness. A part that cannot be read is named in ``errors``; nothing here raises for a service down."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from mdslab.errors import MdslabError
from mdslab.lakehouse import Lakehouse
from mdslab.settings import Settings
from mdslab.workloads.lake_metrics import LakeSnapshot, take_snapshot

Samples = dict[str, list[tuple[dict[str, str], float]]]
DEFAULT_TIMEOUT_S = 2.0


def scrape(url: str, *, client: httpx.Client | None = None) -> Samples | None:
    """Samples by name from a /metrics endpoint; None when nothing answers there."""
    try:
        text = (client.get(url) if client is not None else httpx.get(url, timeout=DEFAULT_TIMEOUT_S)).text
    except httpx.HTTPError:
        return None
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def status_figures(
    settings: Settings, lake: Lakehouse, *, snapshot: LakeSnapshot | None = None, client: httpx.Client | None = None
) -> dict[str, Any]:
    """The figures as plain data (``mdslab status --json`` prints them); pass a ``snapshot`` already taken
    to read the lake once, and the ``client`` of a long-lived caller (its timeout bounds the scrapes)."""
    from mdslab.llm.freshness import indexed_table_versions, stale_sources
    from mdslab.workloads.pipeline.runlog import GATE_STEP

    host = settings.api.host
    api = scrape(f"http://{host}:{settings.api.port}/metrics", client=client)
    metrics_port = settings.stream.metrics_port
    consumer = scrape(f"http://{host}:{metrics_port}/metrics", client=client) if metrics_port else None
    lag: dict[str, float] = {}
    for labels, value in (consumer or {}).get("mdslab_stream_consumer_lag", []):
        lag[labels["topic"]] = lag.get(labels["topic"], 0.0) + value
    requests = sum(v for _, v in (api or {}).get("mdslab_api_requests_total", []))
    snap = snapshot or take_snapshot(lake, settings.postgres)
    errors = list(snap.errors)
    rag: dict[str, Any] = {"indexed": False, "stale": []}
    try:
        indexed = indexed_table_versions(settings)
        if indexed is not None:
            rag = {"indexed": True, "stale": [source.line() for source in stale_sources(indexed, lake)]}
    except (MdslabError, OSError, psycopg.Error) as exc:
        errors.append(f"RAG index: {exc}")
    gate = next((run for run in snap.last_runs if run.step == GATE_STEP), None)
    layers: dict[str, dict[str, int]] = {}
    for info in snap.tables:
        if info.version is not None:
            layer = layers.setdefault(str(info.layer), {"tables": 0, "rows": 0})
            layer["tables"] += 1
            layer["rows"] += info.rows
    return {
        "api": {"url": f"http://{host}:{settings.api.port}", "up": api is not None, "requests": int(requests)},
        "consumer": {"up": consumer is not None, "lag_by_topic": lag},
        "layers": layers,
        "stale_gold": {name: reasons for name, reasons in snap.stale_gold.items() if reasons},
        "published": snap.published,
        "newest_visible": snap.newest_visible,
        "last_runs": [
            {"step": r.step, "status": r.status, "finished_at": r.finished_at, "seconds": round(r.seconds, 1)}
            for r in snap.last_runs
            if r.step != GATE_STEP
        ],
        "gate": None
        if gate is None
        else {"passed": gate.status != "failed", "finished_at": gate.finished_at, "reason": gate.error},
        "rag": rag,
        "errors": errors,
    }
