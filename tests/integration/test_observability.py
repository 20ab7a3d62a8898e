"""A real Prometheus scrapes the API, the stream consumer and Ray after a small demo; every PromQL
expression of every dashboard panel and alert rule must parse and return series.

The demo: events through the API (some refused), poison messages straight to Kafka (dead letters), the
consumer into bronze, the pipeline on Spark, a model trained and scored, the RAG index, then a predict
call, a RAG question and a gateway completion. Prometheus (Debian's `prometheus` package, installed by
`.ci/run`) runs with observability/prometheus/prometheus.yml, its targets pointed at this run's processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from prometheus_client import CollectorRegistry, start_http_server

from mdslab.api.app import create_app
from mdslab.api.server import background_server
from mdslab.eventbus import EventPublisher
from mdslab.lakehouse.tables import TableMissingError
from mdslab.llm.operations import index_lake
from mdslab.ml.features import FRAUD
from mdslab.ml.score import score
from mdslab.ml.train import train_from_lake
from mdslab.settings import Settings
from mdslab.telemetry import prometheus_config, register_process_metrics
from mdslab.tracking import configure
from mdslab.workloads.ingestion.consumer import StreamConsumer, StreamMetrics
from mdslab.workloads.ingestion.events import TRANSACTIONS, Topics
from mdslab.workloads.ingestion.sender import ApiTarget
from mdslab.workloads.ingestion.stream_feed import feed_simulation
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.lake_metrics import LakeCollector
from mdslab.workloads.pipeline.runlog import latest_runs
from mdslab.workloads.pipeline.runner import run_pipeline
from mdslab.workloads.quality import GOLD_TABLES
from mdslab.workloads.simulator import SimulationConfig, simulate
from tests.conftest import free_port, fresh_lake, valid_transaction, whole_lab

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "observability"
COMPARISON = re.compile(r"\s*(>|<|==|!=|>=|<=)\s*[-+]?[0-9.]+(e[-+]?[0-9]+)?\s*$")
CADVISOR = "container_"  # cAdvisor's metrics: nothing here runs containers (see the issue note)


def dashboard_exprs() -> list[tuple[str, str]]:
    """(dashboard / panel, PromQL) of every target of every dashboard."""
    found = []
    for path in sorted((OBSERVABILITY / "grafana" / "dashboards").glob("*.json")):
        board = orjson.loads(path.read_bytes())
        for panel in board["panels"]:
            found += [(f"{board['title']} / {panel['title']}", t["expr"]) for t in panel["targets"]]
    return found


def alert_signals() -> list[tuple[str, str]]:
    """(alert, its expression without the final comparison): the signal the alert watches."""
    rules = yaml.safe_load((OBSERVABILITY / "prometheus" / "alerts.yml").read_text())
    return [(rule["alert"], COMPARISON.sub("", rule["expr"])) for group in rules["groups"] for rule in group["rules"]]


@dataclass(frozen=True)
class Scraped:
    url: str
    settings: Settings


def _demo(settings: Settings, spark_provider: Any, api_url: str, metrics: StreamMetrics) -> None:
    lake = lakehouse(settings)
    data = simulate(SimulationConfig(transactions=3000, seed=21, invalid_share=0.03))
    target = ApiTarget(api_url, settings.api.api_key.get_secret_value())
    try:
        fed = feed_simulation(settings, lake, data, target, batch_size=300)
    finally:
        target.close()
    assert fed.sent is not None and fed.sent.total("rejected") > 0
    poison = [b"{not json", orjson.dumps(valid_transaction(amount=-1))]
    publisher = EventPublisher(settings.kafka)
    try:
        publisher.publish_blocking(
            Topics(settings.kafka.topic_prefix).of(TRANSACTIONS), [(b"C1", p) for p in poison], TRANSACTIONS.headers
        )
    finally:
        publisher.close()
    StreamConsumer(settings, lake, metrics=metrics).run(until_caught_up=True)
    run_pipeline(settings, spark=spark_provider)
    client = configure(settings)
    train_from_lake(settings, lake, client, FRAUD, spark=spark_provider)
    score(settings, lake, client)
    index_lake(settings, lake)
    key = settings.api.api_key.get_secret_value()
    row = lake.read_table(FRAUD.table, columns=list(FRAUD.features)).slice(0, 1).to_pylist()[0]
    with httpx.Client(base_url=api_url, headers={"X-API-Key": key}, timeout=60) as http:
        assert http.post("/v1/models/fraud/predict", json=[row]).status_code == 200
        assert http.post("/v1/rag/query", json={"question": "Which claims mention a police report?"}).is_success
        chat = {"model": "mdslab-rag", "messages": [{"role": "user", "content": "What is in gold.daily_spend?"}]}
        assert http.post("/v1/chat/completions", json=chat).status_code == 200
        assert http.post("/v1/transactions", json=[{"amount": -1}]).status_code == 422


def _prometheus_config(tmp: Path, targets: dict[str, str], own: str) -> Path:
    config = prometheus_config(
        OBSERVABILITY / "prometheus" / "prometheus.yml",
        {**targets, "prometheus": own},
        rules=OBSERVABILITY / "prometheus" / "alerts.yml",
        scrape_interval="1s",
    )
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def scraped(services: Settings, spark_provider: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    binary = shutil.which("prometheus")
    assert binary, "Prometheus is not installed: `apt-get install prometheus` (what .ci/run does) or `nix develop`"
    settings = whole_lab(services, "m")
    registry = CollectorRegistry()
    register_process_metrics(registry)
    metrics = StreamMetrics(registry)
    consumer_port = free_port()
    server, _thread = start_http_server(consumer_port, addr="127.0.0.1", registry=registry)
    tmp = tmp_path_factory.mktemp("prometheus")
    process = None
    try:
        with background_server(create_app(settings)) as api_url:
            _demo(settings, spark_provider, api_url, metrics)
            own = f"127.0.0.1:{free_port()}"
            targets = {
                "mdslab-api": api_url.removeprefix("http://"),
                "mdslab-consumer": f"127.0.0.1:{consumer_port}",
                "ray": f"127.0.0.1:{services.compute.ray_metrics_port}",
            }
            config = _prometheus_config(tmp, targets, own)
            process = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
                 f"--web.listen-address={own}", "--web.enable-remote-write-receiver"],
                stdout=subprocess.DEVNULL, stderr=(tmp / "prometheus.log").open("wb"),
            )  # fmt: skip
            url = f"http://{own}"
            _wait_for_scrapes(url, set(targets))
            yield Scraped(url, settings)
    finally:
        if process is not None:
            process.terminate()
            process.wait(30)
        server.shutdown()


def _wait_for_scrapes(url: str, jobs: set[str], timeout_s: float = 120.0) -> None:
    """Every job's target up, then a few more scrapes so that rate() has samples to work with."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{url}/api/v1/targets", timeout=5)
        except httpx.HTTPError:  # not listening yet
            response = None
        # while starting, Prometheus answers 503 with a plain-text body
        active = response.json()["data"]["activeTargets"] if response is not None and response.is_success else []
        up = {t["labels"]["job"] for t in active if t["health"] == "up"}
        if jobs <= up:
            time.sleep(6)
            return
        time.sleep(1)
    raise AssertionError(f"targets not up within {timeout_s:.0f} s: {jobs - up}; all: {active}")


def _query(url: str, expr: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=30).json()
    return body


def test_every_dashboard_expression_returns_series(scraped: Scraped) -> None:
    empty, invalid = [], []
    for where, expr in dashboard_exprs():
        body = _query(scraped.url, expr)
        if body["status"] != "success":
            invalid.append(f"{where}: {body.get('error')}")
        elif not body["data"]["result"] and CADVISOR not in expr:
            empty.append(f"{where}: {expr}")
    assert not invalid, invalid
    assert not empty, "no series for: " + "; ".join(empty)


def test_every_alert_rule_is_loaded_and_watches_series(scraped: Scraped) -> None:
    groups = httpx.get(f"{scraped.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    signals = alert_signals()
    assert set(loaded) == {name for name, _ in signals}
    assert all(rule["health"] == "ok" for rule in loaded.values()), loaded
    empty = [f"{name}: {expr}" for name, expr in signals if not _query(scraped.url, expr)["data"]["result"]]
    assert not empty, "alert signals without series: " + "; ".join(empty)


def test_pipeline_figures_reach_prometheus_through_the_api(scraped: Scraped) -> None:
    rows = _query(scraped.url, 'mdslab_pipeline_step_rows{table="silver.transactions"}')["data"]["result"]
    silver = lakehouse(scraped.settings).row_count("silver.transactions")
    assert [float(r["value"][1]) for r in rows] == [silver]
    failed = _query(scraped.url, "sum(mdslab_pipeline_step_last_failed)")["data"]["result"]
    assert float(failed[0]["value"][1]) == 0
    dead = _query(scraped.url, 'sum(mdslab_stream_messages_total{outcome="dead_letter"})')["data"]["result"]
    assert float(dead[0]["value"][1]) == 2  # the two poison messages


def test_status_shows_the_lake_and_the_last_runs(scraped: Scraped) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "mdslab"), "status", "--json"],
        env=os.environ | scraped.settings.environment(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)["figures"]
    lake = lakehouse(scraped.settings)
    gold = [spec.name for spec in lake.registry if str(spec.layer) == "gold" and lake.exists(spec.name)]
    assert set(GOLD_TABLES) < set(gold)  # and the scores
    assert figures["layers"]["gold"] == {"tables": len(gold), "rows": sum(lake.row_count(t) for t in gold)}
    assert {run["step"]: run["status"] for run in figures["last_runs"]}["gold_daily_spend"] == "built"
    assert figures["errors"] == []


def test_a_failed_step_is_recorded_with_its_error(services: Settings) -> None:
    settings = fresh_lake(services, "mf")
    with pytest.raises(TableMissingError):
        run_pipeline(settings, steps=["silver_transactions"])
    (run,) = latest_runs(settings.postgres)
    assert (run.step, run.status) == ("silver_transactions", "failed")
    assert run.error is not None and "bronze.transactions" in run.error
    collector = LakeCollector(lakehouse(settings), settings.postgres)
    failed = {
        sample.labels["step"]: sample.value
        for family in collector.collect()
        if family.name == "mdslab_pipeline_step_last_failed"
        for sample in family.samples
    }
    assert failed == {"silver_transactions": 1.0}


def test_mdslab_prometheus_runs_with_the_labs_rules_and_stops_on_ctrl_c(services: Settings) -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "mdslab"), "prometheus", "--port", str(port)],
        env=os.environ | services.environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/-/ready", timeout=2).status_code == 200:
                    break
            time.sleep(0.5)
        groups = httpx.get(f"http://127.0.0.1:{port}/api/v1/rules", timeout=10).json()["data"]["groups"]
        assert {rule["name"] for group in groups for rule in group["rules"]} == {n for n, _ in alert_signals()}
        scrape_urls: dict[str, str] = {}
        while not scrape_urls and time.monotonic() < deadline:  # targets appear after the first discovery
            targets = httpx.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
            scrape_urls = {t["labels"]["job"]: t["scrapeUrl"] for t in targets}
            time.sleep(0.5)
        assert scrape_urls["ray"] == f"http://127.0.0.1:{services.compute.ray_metrics_port}/metrics"
        assert scrape_urls["mdslab-api"] == f"http://{services.api.host}:{services.api.port}/metrics"
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(30)
    assert code == 0
