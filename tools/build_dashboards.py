"""Write the Grafana dashboards (observability/grafana/dashboards/*.json) from the panel lists below.

Dashboards are generated, not hand-edited: one place says which PromQL each panel runs, and the tests read
the same JSON Grafana loads (every expression must return series on a real Prometheus after a demo).
Run `python tools/build_dashboards.py` after changing a panel; a test fails when the files are out of date.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "observability" / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@dataclass(frozen=True)
class Panel:
    title: str
    exprs: list[tuple[str, str]]  # (PromQL, legend)
    unit: str = "short"
    kind: str = "timeseries"
    description: str = ""


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    tags: list[str]
    panels: list[Panel] = field(default_factory=list)


def q95(metric: str, by: str) -> str:
    return f"histogram_quantile(0.95, sum by (le, {by}) (rate({metric}_bucket[5m])))"


def q50(metric: str, by: str) -> str:
    return f"histogram_quantile(0.5, sum by (le, {by}) (rate({metric}_bucket[5m])))"


DASHBOARDS = [
    Dashboard(
        "mdslab-api",
        "mdslab / API",
        "Requests, latency and errors of `mdslab serve`, per route.",
        ["mdslab", "api"],
        [
            Panel(
                "Requests per second by route and status",
                [("sum by (route, status) (rate(mdslab_api_requests_total[1m]))", "{{route}} {{status}}")],
                "reqps",
            ),
            Panel("Latency p95 by route", [(q95("mdslab_api_request_duration_seconds", "route"), "{{route}}")], "s"),
            Panel("Latency p50 by route", [(q50("mdslab_api_request_duration_seconds", "route"), "{{route}}")], "s"),
            Panel(
                "Share of 5xx by route",
                [
                    (
                        '(sum by (route) (rate(mdslab_api_requests_total{status=~"5.."}[5m])) or sum by (route) '
                        "(rate(mdslab_api_requests_total[5m])) * 0) / "
                        "sum by (route) (rate(mdslab_api_requests_total[5m]))",
                        "{{route}}",
                    )
                ],
                "percentunit",
            ),
            Panel(
                "4xx by route and status",
                [
                    (
                        'sum by (route, status) (increase(mdslab_api_requests_total{status=~"4.."}[5m]))',
                        "{{route}} {{status}}",
                    )
                ],
            ),
            Panel("API process memory", [('process_resident_memory_bytes{job="mdslab-api"}', "RSS")], "bytes"),
        ],
    ),
    Dashboard(
        "mdslab-ingestion",
        "mdslab / Ingestion and Kafka lag",
        "Events through the API into Kafka, and the consumer that writes them to bronze.",
        ["mdslab", "ingestion", "kafka"],
        [
            Panel(
                "Events by type and outcome (per second)",
                [("sum by (event_type, outcome) (rate(mdslab_ingest_events_total[1m]))", "{{event_type}} {{outcome}}")],
                "ops",
            ),
            Panel(
                "Consumer lag per partition",
                [("mdslab_stream_consumer_lag", "{{topic}} [{{partition}}]")],
                description="Messages in Kafka not yet in bronze.",
            ),
            Panel(
                "Messages to bronze and to the dead letters (per second)",
                [("sum by (topic, outcome) (rate(mdslab_stream_messages_total[1m]))", "{{topic}} {{outcome}}")],
                "ops",
            ),
            Panel(
                "Dead letters in the last hour",
                [('sum by (topic) (increase(mdslab_stream_messages_total{outcome="dead_letter"}[1h]))', "{{topic}}")],
                kind="stat",
            ),
            Panel(
                "Micro-batch commit p95",
                [
                    (
                        "histogram_quantile(0.95, sum by (le) (rate(mdslab_stream_batch_duration_seconds_bucket[5m])))",
                        "p95",
                    )
                ],
                "s",
            ),
            Panel(
                "Seconds since the last bronze commit",
                [("time() - mdslab_stream_last_commit_timestamp_seconds", "age")],
                "s",
                kind="stat",
            ),
        ],
    ),
    Dashboard(
        "mdslab-lakehouse",
        "mdslab / Lakehouse pipelines",
        "Pipeline steps (from ops.step_runs) and the Delta tables they build (from the logs), served by the API.",
        ["mdslab", "lakehouse", "spark"],
        [
            Panel(
                "Last run duration by step",
                [("mdslab_pipeline_step_last_duration_seconds", "{{step}}")],
                "s",
                kind="bargauge",
            ),
            Panel(
                "Rows written by the last build",
                [("mdslab_pipeline_step_rows", "{{step}} -> {{table}}")],
                kind="bargauge",
            ),
            Panel(
                "Runs by step and status",
                [("sum by (step, status) (mdslab_pipeline_step_runs_total)", "{{step}} {{status}}")],
                kind="table",
            ),
            Panel("Last run failed", [("mdslab_pipeline_step_last_failed", "{{step}}")], kind="stat"),
            Panel("Gold stale (1: no longer matches its inputs)", [("mdslab_gold_stale", "{{table}}")], kind="stat"),
            Panel(
                "Data age: newest event readers can see (since it arrived)",
                [("mdslab_published_data_age_seconds", "{{table}}")],
                "s",
            ),
            Panel(
                "Published vs latest version (write-audit-publish)",
                [
                    ("mdslab_table_published_version", "{{table}} published"),
                    ('mdslab_table_version{layer=~"silver|gold"}', "{{table}} latest"),
                ],
                kind="table",
            ),
            Panel(
                "Hours since each gold step last succeeded",
                [('(time() - mdslab_pipeline_step_last_success_timestamp_seconds{layer="gold"}) / 3600', "{{step}}")],
                "h",
            ),
            Panel("Rows per table", [("sum by (layer, table) (mdslab_table_rows)", "{{table}}")], kind="bargauge"),
            Panel("Table versions", [("mdslab_table_version", "{{table}}")], kind="table"),
        ],
    ),
    Dashboard(
        "mdslab-ray-spark",
        "mdslab / Ray and Spark resources",
        "Ray's own metrics: the node, its components (RayDP's Spark master and executors are Ray actors) and "
        "the object store the lake <-> Spark exchange goes through.",
        ["mdslab", "ray", "spark"],
        [
            Panel("Node CPU utilisation", [("ray_node_cpu_utilization", "{{instance}}")], "percent"),
            Panel("Node memory used", [("ray_node_mem_used", "{{instance}}")], "bytes"),
            Panel(
                "Memory by Ray component (MB)",
                [("sum by (Component) (ray_component_rss_mb)", "{{Component}}")],
                "decmbytes",
            ),
            Panel(
                "CPU by Ray component",
                [("sum by (Component) (ray_component_cpu_percentage)", "{{Component}}")],
                "percent",
            ),
            Panel("Object store memory", [("sum by (Location) (ray_object_store_memory)", "{{Location}}")], "bytes"),
            Panel("Logical CPUs by state", [('sum by (State) (ray_resources{Name="CPU"})', "{{State}}")]),
        ],
    ),
    Dashboard(
        "mdslab-ml-rag",
        "mdslab / ML and RAG",
        "Online scoring with the champion model, the RAG chain's stages and the LLM gateway.",
        ["mdslab", "ml", "rag"],
        [
            Panel(
                "Model scoring latency p95", [(q95("mdslab_model_predict_duration_seconds", "model"), "{{model}}")], "s"
            ),
            Panel(
                "Rows scored online (per second)",
                [("sum by (model) (rate(mdslab_model_scored_rows_total[5m]))", "{{model}}")],
                "ops",
            ),
            Panel("RAG latency p95 by stage", [(q95("mdslab_rag_stage_duration_seconds", "stage"), "{{stage}}")], "s"),
            Panel("RAG latency p50 by stage", [(q50("mdslab_rag_stage_duration_seconds", "stage"), "{{stage}}")], "s"),
            Panel(
                "Gateway requests by backend and status",
                [("sum by (backend, status) (increase(mdslab_gateway_requests_total[5m]))", "{{backend}} {{status}}")],
            ),
            Panel("Rows in gold.fraud_scores", [('mdslab_table_rows{table="gold.fraud_scores"}', "rows")], kind="stat"),
        ],
    ),
    Dashboard(
        "mdslab-containers",
        "mdslab / Containers and processes",
        "Containers via cAdvisor (Compose stack), and the lab's own processes via their process metrics (any run).",
        ["mdslab", "containers", "cadvisor"],
        [
            Panel(
                "Container CPU (cores)",
                [('sum by (name) (rate(container_cpu_usage_seconds_total{name!=""}[1m]))', "{{name}}")],
            ),
            Panel(
                "Container memory (working set)",
                [('sum by (name) (container_memory_working_set_bytes{name!=""})', "{{name}}")],
                "bytes",
            ),
            Panel(
                "Container network received",
                [('sum by (name) (rate(container_network_receive_bytes_total{name!=""}[1m]))', "{{name}}")],
                "Bps",
            ),
            Panel("Lab processes: memory", [('process_resident_memory_bytes{job=~"mdslab-.*"}', "{{job}}")], "bytes"),
            Panel("Lab processes: CPU (cores)", [('rate(process_cpu_seconds_total{job=~"mdslab-.*"}[1m])', "{{job}}")]),
            Panel("Scrape targets up", [("up", "{{job}} {{instance}}")], kind="stat"),
        ],
    ),
]

CADVISOR_PREFIX = "container_"  # cAdvisor's metrics: only the Compose stack runs it


def _panel(panel: Panel, index: int) -> dict[str, Any]:
    width = 12
    return {
        "id": index + 1,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": width, "x": (index % 2) * width, "y": (index // 2) * 8},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}} if panel.kind == "timeseries" else {},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(panel.exprs)
        ],
    }


def render(dashboard: Dashboard) -> dict[str, Any]:
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": dashboard.tags,
        "editable": False,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
                 "current": {"text": "Prometheus", "value": "mdslab-prometheus"}}
            ]
        },
        "panels": [_panel(panel, i) for i, panel in enumerate(dashboard.panels)],
    }  # fmt: skip


def rendered() -> dict[str, str]:
    """File name -> JSON text, exactly as written."""
    return {f"{d.uid}.json": json.dumps(render(d), indent=2) + "\n" for d in DASHBOARDS}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (OUT / name).write_text(text)
    print(f"wrote {len(DASHBOARDS)} dashboards to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
