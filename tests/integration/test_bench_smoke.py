"""Every benchmark runs end to end at a tiny size, so it cannot rot between the runs that measure.

Tiny sizes measure nothing; these check that each command still starts, does every step against the
real services, and writes its results JSON with the figures the README quotes. The ones that need a
Spark session of their own (training, lineage, the incremental pipeline, SQL: ~1 min each to start Spark in
a subprocess) are marked slow (`make test-all`), and so are the console's, the ingestion's and the RAG's
(~20-30 s each that the default suite's 30 minutes no longer have; the product paths they drive are tested
in test_console.py, test_streaming.py and test_rag.py); all of them are type-checked in `make lint` and
`make test` too, and the DuckDB pipeline's runs here by default.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mdslab.settings import Settings
from tests.integration.conftest import Built

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench(services: Settings, tmp_path: Path, script: str, *args: str) -> dict[str, Any]:
    """Run ``bench/<script>`` with the test lab's services; its one results JSON."""
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args, "--results-dir", str(results)],
        env=os.environ | services.environment(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    (found,) = results.glob("*.json")
    report: dict[str, Any] = json.loads(found.read_text())
    assert report["machine"] and report["versions"]  # the header every result carries
    return report


def test_pipeline_bench_on_duckdb(services: Settings, tmp_path: Path) -> None:
    report = _bench(services, tmp_path, "pipeline.py", "--rows", "2000", "--engines", "duckdb")
    (size,) = report["sizes"]
    assert size["rows"] == 2000
    assert size["runs"]["duckdb"]["seconds"] > 0


@pytest.mark.slow
def test_ingest_bench(services: Settings, tmp_path: Path) -> None:
    report = _bench(
        services, tmp_path, "ingest.py",
        "--events", "1000", "--single-events", "100", "--rate", "50", "--duration", "2", "--timeout", "120",
    )  # fmt: skip
    assert report["bronze_check"]["exactly_once"] is True and report["bronze_check"]["missing"] == 0
    assert {"batch", "single", "rates"} <= set(report["steps"])


@pytest.mark.slow
def test_rag_bench(services: Settings, tmp_path: Path) -> None:
    report = _bench(
        services, tmp_path, "rag.py",
        "--sizes", "100", "200", "--queries", "10", "--requests", "5", "--exact-sql-queries", "5",
        "--ef-search", "40", "100",
    )  # fmt: skip
    real, synthetic = report["sizes"]  # the second size is topped up with synthetic vectors
    assert (real["chunks"], synthetic["chunks"]) == (100, 200) and synthetic["synthetic_load"]["rows"] > 0
    assert {"exact_numpy", "hnsw"} <= set(real["retrieval"])
    assert report["e2e"]["requests"] == 5


@pytest.mark.slow
def test_train_bench(services: Settings, tmp_path: Path) -> None:
    report = _bench(services, tmp_path, "train.py", "--rows", "20000")  # enough labelled frauds to validate on
    (size,) = report["sizes"]
    assert size


@pytest.mark.slow
def test_lineage_bench(services: Settings, tmp_path: Path) -> None:
    report = _bench(
        services, tmp_path, "lineage.py",
        "--rows", "2000", "--batch-rows", "1000", "--repeat", "1", "--events", "100", "--queries", "1",
    )  # fmt: skip
    assert {"full", "incremental"} <= set(report["pipeline"])
    assert report["ingest"] and report["answer"]


@pytest.mark.slow
def test_incremental_pipeline_bench(services: Settings, tmp_path: Path) -> None:
    report = _bench(
        services, tmp_path, "pipeline.py", "--incremental", "--rows", "2000", "--batches", "1", "--batch-rows", "1000"
    )
    assert len(report["increments"]) == 1 and report["full_rebuild"]["published"]


@pytest.mark.slow
def test_sql_bench(services: Settings, tmp_path: Path) -> None:
    report = _bench(services, tmp_path, "sql.py", "--rows", "5000", "--repeat", "1", "--spark-repeat", "1")
    (size,) = report["sizes"]
    assert size["builds_s"] and size["previous_version"] is not None and size["local_copy"]["snapshots"]
    for query in size["queries"].values():  # every engine answered, with the ceiling's rows
        assert query["parquet"]["median_s"] > 0 and query["mdslab"]["vs_parquet"] > 0
        assert query["mdslab"]["answer"]["agree"] and query["spark"]["answer"]["agree"], query
    assert any(query["parquet"]["rows"] for query in size["queries"].values())


@pytest.mark.slow
def test_console_bench(built: Built, tmp_path: Path) -> None:
    """Over the consumption tests' lake (the bench reads the lake its settings name)."""
    report = _bench(built.settings, tmp_path, "console.py", "--requests", "5", "--other-requests", "2")
    assert report["pages"]["main page"]["requests"] == 5 and report["target"]["main_page_p95_ms"] == 500
    assert report["lake_view_read_s"] is not None


def test_case_files_bench(services: Settings, tmp_path: Path) -> None:
    report = _bench(services, tmp_path, "case_files.py", "--documents", "300")
    assert report["baseline_read"]["documents"] == 300 and report["full"]["upserts"] == 300
    assert report["incremental"]["upserts"] == report["incremental"]["changed_documents"] == 3
    assert report["full"]["documents_per_s"] > 0 and report["target"]["documents_per_s"] == 5_000
