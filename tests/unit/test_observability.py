"""The observability files agree with the code: dashboards are what tools/build_dashboards.py writes,
every mdslab_* metric a panel or an alert names is one the code exports, Alloy scrapes what Prometheus
scrapes, and the Prometheus files pass promtool."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import orjson
import pytest
import yaml
from prometheus_client import CollectorRegistry

from mdslab.api.app import HttpMetrics
from mdslab.lakehouse import TableInfo
from mdslab.llm.gateway import GatewayMetrics
from mdslab.llm.routes import RagMetrics
from mdslab.ml.serving import ModelMetrics
from mdslab.workloads.ingestion.consumer import StreamMetrics
from mdslab.workloads.ingestion.routes import IngestMetrics
from mdslab.workloads.lake_metrics import LakeCollector, LakeSnapshot
from mdslab.workloads.pipeline.runlog import StepRun, StepTotals

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "observability"
METRIC = re.compile(r"\bmdslab_[a-z0-9_]+")


def _builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_dashboards", ROOT / "tools" / "build_dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def exported_names() -> set[str]:
    """Every sample name the code exposes: the metric classes on a registry, each label set used once,
    and the lake collector over a snapshot with one of everything (a stand-in for the lake and PostgreSQL)."""
    registry = CollectorRegistry()
    classes = (HttpMetrics, IngestMetrics, StreamMetrics, RagMetrics, GatewayMetrics, ModelMetrics)
    for metrics in (cls(registry) for cls in classes):
        for value in vars(metrics).values():
            if getattr(value, "_labelnames", None):
                value.labels(*["x"] * len(value._labelnames))
    now = datetime.now(UTC)
    snapshot = LakeSnapshot(
        tables=[TableInfo("gold.daily_spend", "gold", "s3://x", "", 3, 10, 1, 100, "WRITE", now)],  # type: ignore[arg-type]
        stale_gold={"gold.daily_spend": []},
        steps=[StepTotals("gold_daily_spend", "gold", {"built": 1}, now, {"gold.daily_spend": 10})],
        last_runs=[StepRun("gold_daily_spend", "gold", "built", now, 1.0, 10, {"gold.daily_spend": 10}, None)],
        taken_at=now.timestamp(),
        seconds=0.1,
        published={"silver.transactions": 2},
        newest_visible={"silver.transactions": now},
    )
    collector = LakeCollector.__new__(LakeCollector)
    collector.snapshot = lambda: snapshot  # type: ignore[method-assign]
    registry.register(collector)
    return {sample.name for family in registry.collect() for sample in family.samples}


def referenced() -> dict[str, set[str]]:
    """mdslab_* names per place (dashboard panel or alert) that uses them."""
    found: dict[str, set[str]] = {}
    for path in sorted((OBSERVABILITY / "grafana" / "dashboards").glob("*.json")):
        board = orjson.loads(path.read_bytes())
        for panel in board["panels"]:
            for target in panel["targets"]:
                found.setdefault(f"{path.name}: {panel['title']}", set()).update(METRIC.findall(target["expr"]))
    rules = yaml.safe_load((OBSERVABILITY / "prometheus" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            found.setdefault(f"alert {rule['alert']}", set()).update(METRIC.findall(rule["expr"]))
    return found


def test_the_dashboards_are_what_the_builder_writes() -> None:
    builder = _builder()
    written = {p.name: p.read_text() for p in (OBSERVABILITY / "grafana" / "dashboards").glob("*.json")}
    assert written == builder.rendered(), "run `python tools/build_dashboards.py`"
    uids = [orjson.loads(text)["uid"] for text in written.values()]
    assert len(set(uids)) == len(uids) == 6


def test_every_mdslab_metric_in_a_panel_or_alert_is_exported_by_the_code() -> None:
    exported = exported_names()
    assert "mdslab_api_requests_total" in exported and "mdslab_pipeline_step_last_failed" in exported
    unknown = {place: names - exported for place, names in referenced().items() if names - exported}
    assert not unknown, unknown


def test_every_panel_queries_the_provisioned_datasource() -> None:
    datasources = yaml.safe_load(
        (OBSERVABILITY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    (source,) = datasources["datasources"]
    for path in (OBSERVABILITY / "grafana" / "dashboards").glob("*.json"):
        board = orjson.loads(path.read_bytes())
        variable = board["templating"]["list"][0]
        assert variable["type"] == "datasource" and variable["current"]["value"] == source["uid"]
        assert all(panel["datasource"]["uid"] == "${datasource}" for panel in board["panels"]), path.name


def test_alloy_scrapes_the_jobs_and_addresses_prometheus_scrapes() -> None:
    config = yaml.safe_load((OBSERVABILITY / "prometheus" / "prometheus.yml").read_text())
    prometheus = {
        job["job_name"]: job["static_configs"][0]["targets"][0]
        for job in config["scrape_configs"]
        if job["job_name"] != "prometheus"
    }
    alloy = (OBSERVABILITY / "alloy" / "config.alloy").read_text()
    scraped = dict(
        (job, address)
        for address, job in re.findall(
            r'"__address__" = coalesce\(sys\.env\("\w+"\), "([^"]+)"\), "job" = "([^"]+)"', alloy
        )
    )
    assert scraped == prometheus
    assert "prometheus.remote_write" in alloy and "/api/v1/write" in alloy


@pytest.mark.parametrize("check", [("rules", "alerts.yml"), ("config", "prometheus.yml")])
def test_promtool_accepts_the_prometheus_files(check: tuple[str, str]) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed: `apt-get install prometheus` (what .ci/run does) or `nix develop`"
    done = subprocess.run(
        [promtool, "check", *check], cwd=OBSERVABILITY / "prometheus", capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
