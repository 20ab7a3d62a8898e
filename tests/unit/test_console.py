"""The lab console's pure pieces, without any service: health probes (a closed port, a guarded UI, one that
never answers), the UIs' addresses from the settings, the lineage layout, the background refresh, and the
pages that must not need the lake (bad SQL, an unknown page, every service down)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from mdslab.console.cache import Refreshing
from mdslab.console.health import ServiceState, WebUi, probe_client, probe_ui, web_uis
from mdslab.console.lineage_map import layout, neighbourhood
from mdslab.settings import Settings, load_settings


@pytest.fixture
def nothing_running(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """Settings whose every endpoint is a closed loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    for name, value in {
        "MDSLAB_STATE_DIR": str(tmp_path / "state"),
        "MDSLAB_S3__ENDPOINT_URL": f"http://127.0.0.1:{closed}",
        "MDSLAB_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{closed}",
        "MDSLAB_POSTGRES__PORT": str(closed),
        "MDSLAB_MONGO__URL": f"mongodb://127.0.0.1:{closed}",
        "MDSLAB_API__PORT": str(closed),
        "MDSLAB_STREAM__METRICS_PORT": str(closed),
        "MDSLAB_CONSOLE__PROBE_TIMEOUT_S": "0.3",
    }.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def _ui(url: str) -> WebUi:
    return WebUi("Some UI", url, url, "mdslab some-ui")


def test_a_closed_port_is_not_running_and_a_guarded_ui_is_up(nothing_running: Settings) -> None:
    with probe_client(nothing_running) as client:
        closed = probe_ui(_ui(nothing_running.s3.endpoint_url), client)
    assert not closed.up and closed.state == "not running" and closed.detail == "not reachable (nothing listening)"
    answers = {"/guarded": 403, "/broken": 503}
    double = httpx.MockTransport(lambda request: httpx.Response(answers[request.url.path]))
    with httpx.Client(transport=double) as client:
        guarded = probe_ui(_ui("http://ui/guarded"), client)
        broken = probe_ui(_ui("http://ui/broken"), client)
    assert guarded.up and guarded.detail.startswith("HTTP 403")  # Jupyter without its token: it runs
    assert not broken.up and broken.detail.startswith("HTTP 503")
    required = ServiceState("s3", "x", None, False, "timed out", required=True)
    assert required.state == "down"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers a byte."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"http://127.0.0.1:{server.getsockname()[1]}/"


def test_a_ui_that_never_answers_is_cut_off_by_the_probe_timeout(nothing_running: Settings, silent_server: str) -> None:
    with probe_client(nothing_running) as client:
        state = probe_ui(_ui(silent_server), client)
    assert not state.up and state.detail == "timed out"


def test_the_uis_are_where_the_settings_say(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MDSLAB_STATE_DIR", str(tmp_path))
    default = {ui.name: ui for ui in web_uis(load_settings())}
    assert "Prefect" not in default  # the ephemeral API has no UI to link to
    assert default["Spark History Server"].url == "http://127.0.0.1:18080"
    monkeypatch.setenv("MDSLAB_API__PORT", "8123")
    monkeypatch.setenv("MDSLAB_ML__TRACKING_URI", "http://mlflow.lab:5001/")
    monkeypatch.setenv("MDSLAB_ORCHESTRATION__PREFECT_API_URL", "http://127.0.0.1:4201/api")
    monkeypatch.setenv("MDSLAB_CONSOLE__GRAFANA_URL", "http://grafana.lab:3001")
    moved = {ui.name: ui for ui in web_uis(load_settings())}
    assert moved["API (Swagger UI)"].url == "http://127.0.0.1:8123/docs"
    assert moved["MLflow"].probe_url == "http://mlflow.lab:5001/health"
    assert (moved["Prefect"].url, moved["Prefect"].probe_url) == (
        "http://127.0.0.1:4201",
        "http://127.0.0.1:4201/api/health",
    )
    assert moved["Grafana"].url == "http://grafana.lab:3001"


def test_the_lineage_layout_puts_each_dataset_right_of_its_inputs() -> None:
    inputs = {
        "bronze.transactions": {"kafka:transactions"},
        "silver.transactions": {"bronze.transactions", "bronze.customers"},
        "gold.daily_spend": {"silver.transactions"},
        "gold.fraud_features": {"silver.transactions", "gold.daily_spend"},
        "gold.loop": {"gold.loop"},  # a job that rewrites its own input must not hang the layout
    }
    drawn = {node.name: node for node in layout(inputs).nodes}
    for target, sources in inputs.items():
        for source in sources - {target}:
            assert drawn[source].x < drawn[target].x, (source, target)
    assert len(layout(inputs).edges) == 7
    part = neighbourhood(inputs, "gold.daily_spend")
    assert set(part) == {"bronze.transactions", "silver.transactions", "gold.daily_spend", "gold.fraud_features"}
    focused = layout(part, focus="gold.daily_spend")
    assert [node.name for node in focused.nodes if node.focused] == ["gold.daily_spend"]
    assert "kafka:transactions" in {node.name for node in focused.nodes}
    assert layout({}).nodes == ()


def test_a_stale_value_is_served_while_it_is_read_again_in_the_background() -> None:
    reads: list[int] = []
    release = threading.Event()

    def read() -> int:
        if reads:
            release.wait(10)  # a read after the first: held until the test has been served
        reads.append(len(reads))
        return len(reads)

    cache = Refreshing(read, max_age_s=0.0)
    cache.start()
    assert cache.get() == 1  # the first read is waited for
    assert cache.get() == 1  # stale: served as is, one background read started
    assert cache.get() == 1  # still reading: no second background read
    release.set()
    deadline = time.monotonic() + 10
    while cache.get() != 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.get() >= 2


def test_a_first_read_that_fails_is_raised_and_tried_again() -> None:
    outcomes: list[Exception | str] = [OSError("S3 is down"), "figures"]

    def read() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    cache = Refreshing(read, max_age_s=60.0)
    with pytest.raises(OSError, match="S3 is down"):
        cache.get()
    assert cache.get() == "figures"


def test_pages_that_need_no_lake_answer_with_4xx_and_the_overview_renders_with_everything_down(
    nothing_running: Settings,
) -> None:
    from mdslab.console.app import create_console_app

    with TestClient(create_console_app(nothing_running)) as client:
        bad = client.get("/sql", params={"q": "SELEC 1"})
        assert bad.status_code == 400 and 'syntax error at or near "SELEC"' in bad.text.replace("&#34;", '"')
        fragment = client.get("/sql", params={"q": "SELEC 1"}, headers={"X-Console-Fragment": "1"})
        assert fragment.status_code == 400 and "<html" not in fragment.text and 'class="error"' in fragment.text
        assert client.get("/sql", params={"q": "x" * 20_001}).status_code == 400
        missing = client.get("/tables/gold.daily_spnd")
        assert missing.status_code == 404 and "no table &#39;gold.daily_spnd&#39; in the catalog" in missing.text
        assert "did you mean gold.daily_spend" in missing.text
        assert client.get("/no/such/page").status_code == 404
        page = client.get("/")
    assert page.status_code == 200
    text = page.text
    for service in ("s3", "kafka", "postgres", "mongo"):
        assert f'data-service="{service}" data-state="down"' in text
    assert 'data-service="MLflow" data-state="not running"' in text and "mdslab mlflow ui" in text
    assert "could not read lake: S3 at" in text and "could not read lineage store: PostgreSQL at" in text
