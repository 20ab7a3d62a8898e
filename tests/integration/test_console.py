"""The lab console in a real browser: Debian's chromium driven by Playwright (every host but 127.0.0.1
unresolvable, so anything fetched from a CDN would show), over the consumption tests' lake with its RAG
index built. Each panel shows the lake's numbers as `mdslab tables --json` gives them; the SQL box returns
rows and a bad query its one-line error; the ask box a cited answer; the table and lineage pages render
and a lineage node lights its neighbours; an unknown table is a 404 page naming it; and no page logs a
JavaScript error. A screenshot of every page is kept in .cache/console/ for a person to look at."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mdslab.api.server import background_server
from mdslab.console.app import create_console_app
from mdslab.lakehouse.sql import run_duckdb
from mdslab.llm.chain import open_store
from mdslab.llm.embeddings import MiniLmEmbeddings
from mdslab.llm.indexer import index_documents
from mdslab.llm.lake_documents import catalog_documents
from mdslab.polling import wait_until
from mdslab.settings import Settings
from tests.browser import browser_page
from tests.conftest import free_port, fresh_lake, invoke_cli
from tests.integration.conftest import SPEND, Built, psutil_connections

pytestmark = pytest.mark.integration
SHOTS = Path(__file__).resolve().parents[2] / ".cache" / "console"
STATUS_LINE = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d ")


def _only_refusals(errors: list[str]) -> list[str]:
    """Console errors other than the browser's note of a 4xx answer (the page asked for one on purpose)."""
    unexpected = [error for error in errors if not STATUS_LINE.match(error)]
    errors.clear()
    return unexpected


def _reasons(built: Built, table: str) -> dict[str, int]:
    """Rejections by reason code, counted by the SQL engine (not by the console's own code)."""
    query = f"SELECT reason, count(*) AS n FROM (SELECT unnest(reason_codes) AS reason FROM {table}) GROUP BY 1"
    return {row["reason"]: row["n"] for row in run_duckdb(built.lake, query).rows.to_pylist()}


def _index_the_catalog(built: Built) -> None:
    """The RAG index over the table catalog's documents only (a few dozen chunks instead of ~500, seconds
    less on 2 cores): the ask box is what is tested here; tests/integration/test_rag.py tests the indexer."""
    store = open_store(built.settings)
    try:
        index_documents(store, MiniLmEmbeddings(threads=2), catalog_documents(built.lake))
    finally:
        store.close()


def test_the_console_shows_the_lake_and_answers_in_a_browser(built: Built) -> None:
    _index_the_catalog(built)
    listed = invoke_cli(built.settings, "tables", "--json")
    assert listed.exit_code == 0, listed.output
    tables: list[dict[str, Any]] = json.loads(listed.stdout)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with background_server(create_console_app(built.settings)) as url, browser_page() as (page, errors):
        page.goto(f"{url}/")
        for service in ("s3", "kafka", "postgres", "mongo"):
            assert page.get_attribute(f'tr[data-service="{service}"]', "data-state") == "up"
        assert page.get_attribute('tr[data-service="MLflow"]', "data-state") == "not running"
        for table in tables:
            row = page.locator(f'tr.table-row[data-table="{table["name"]}"]')
            shown_version = "-" if table["version"] is None else str(table["version"])
            assert row.locator("td").nth(1).inner_text() == shown_version, table["name"]
            assert row.locator("td").nth(2).inner_text() == f"{table['rows']:,}", table["name"]
        spend = next(table for table in tables if table["name"] == SPEND)
        assert f"published v{spend['published']}" in page.inner_text(f'tr.table-row[data-table="{SPEND}"]')
        for quarantine in ("silver.quarantine_transactions", "silver.quarantine_claims"):
            for reason, count in _reasons(built, quarantine).items():
                cell = page.locator(f'tr.reason[data-table="{quarantine}"][data-reason="{reason}"] td.n')
                assert cell.inner_text() == f"{count:,}", (quarantine, reason)
        assert "passed" in page.inner_text("#gate")
        assert "gold_daily_spend" in page.inner_text("#steps")
        page.screenshot(path=SHOTS / "overview.png", full_page=True)
        assert _only_refusals(errors) == [] and not errors

        page.fill("#sql-query", f"SELECT count(*) AS n FROM {SPEND}")
        page.click("#sql button")
        page.wait_for_selector("#sql-result table.rows")
        assert page.inner_text("#sql-result table.rows tbody td") == str(spend["rows"])
        assert f"read {SPEND}@v{spend['published']}" in page.inner_text("#sql-result")
        page.fill("#sql-query", "SELECT * FROM gold.daily_spnd")
        page.click("#sql button")
        page.wait_for_selector("#sql-result .error")
        assert "unknown table gold.daily_spnd: did you mean gold.daily_spend?" in page.inner_text("#sql-result .error")
        assert _only_refusals(errors) == []

        page.fill("#ask-question", "Which table holds the daily spend per customer?")
        page.click("#ask button")
        page.wait_for_selector("#ask-result .citation", timeout=120_000)
        assert "[1]" in page.inner_text("#ask-result p.answer")
        assert SPEND in page.inner_text("#ask-result ol.citations")
        page.screenshot(path=SHOTS / "overview-answered.png", full_page=True)
        assert errors == []

        page.click(f'#tables a[href="/tables/{SPEND}"]')
        page.wait_for_selector("#columns")
        assert page.inner_text("#rows") == f"{spend['rows']:,}"
        assert page.locator('tr.column[data-column="total_usd"]').count() == 1
        assert page.locator('svg.lineage g.node[data-name="silver.transactions"]').count() == 1
        page.screenshot(path=SHOTS / "table.png", full_page=True)

        page.goto(f"{url}/lineage")
        page.hover(f'svg.lineage g.node[data-name="{SPEND}"]')
        assert "tracing" in (page.get_attribute("svg.lineage", "class") or "")
        assert "lit" in (page.get_attribute('g.node[data-name="silver.transactions"]', "class") or "")
        page.screenshot(path=SHOTS / "lineage.png", full_page=True)
        assert errors == []

        missing = page.goto(f"{url}/tables/gold.daily_spnd")
        assert missing is not None and missing.status == 404
        assert "no table 'gold.daily_spnd' in the catalog; did you mean gold.daily_spend" in page.inner_text("#problem")
        page.screenshot(path=SHOTS / "not-found.png", full_page=True)
        assert _only_refusals(errors) == []


def test_mdslab_console_listens_on_loopback_only(built: Built) -> None:
    port = free_port()
    env = os.environ | built.settings.environment() | {"COLUMNS": "300"}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mdslab"), "console", "--port", str(port)], env=env, stdout=subprocess.PIPE
    )
    try:
        import httpx

        def answers() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return server.poll() is not None

        assert wait_until(answers, timeout_s=120, interval_s=0.3) and server.poll() is None
        listening = {conn.laddr.ip for conn in psutil_connections(server.pid)}
        assert listening == {"127.0.0.1"}, listening
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) in (0, -signal.SIGTERM)


def test_an_empty_rag_index_is_one_line_naming_the_command_that_builds_it(services: Settings) -> None:
    from fastapi.testclient import TestClient

    with TestClient(create_console_app(fresh_lake(services, "console"))) as client:
        asked = client.get("/ask", params={"q": "Which table holds the daily spend?"})
        page = client.get("/")
    assert asked.status_code == 503
    assert "the RAG index is empty: build it with `mdslab rag index`" in asked.text
    assert 'id="index-missing"' in page.text and "<code>mdslab rag index</code>" in page.text
