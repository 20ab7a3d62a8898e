"""The claims system's case files: written to the embedded MongoDB-protocol server through pymongo,
extracted into bronze incrementally and exactly once, across revisions, deletions and a crash between
reading and committing."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pyarrow as pa
import pytest

from mdslab import documentstore
from mdslab.lakehouse import Lakehouse
from mdslab.settings import Settings
from mdslab.workloads.case_files.extract import TABLE, extract_case_files
from mdslab.workloads.case_files.store import COLLECTION, write_case_files
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.simulator import SimulationConfig, simulate
from tests.conftest import fresh_lake, invoke_cli

pytestmark = pytest.mark.integration


def _source(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every case file the source holds now, as bronze should reproduce it (Extended JSON, relaxed)."""
    from bson import json_util

    from mdslab.workloads.case_files.extract import _JSON

    with documentstore.connect(settings.mongo) as client:
        return {
            str(doc["_id"]): json.loads(json_util.dumps(doc, json_options=_JSON))
            for doc in client[settings.mongo.database][COLLECTION].find()
        }


def _bronze_view(lake: Lakehouse) -> dict[str, dict[str, Any]]:
    """The source as bronze says it is: each document's last row, deletions removed."""
    rows = lake.read_table(TABLE).sort_by([("extract_run", "ascending")]).to_pylist()
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        latest[row["document_id"]] = row
    return {key: json.loads(row["document"]) for key, row in latest.items() if row["operation"] == "upsert"}


def _claims(seed: int, first_claim: int) -> pa.Table:
    return simulate(SimulationConfig(transactions=20_000, seed=seed, first_claim=first_claim)).claims


def test_extraction_is_incremental_and_exactly_once_across_revisions_and_deletions(services: Settings) -> None:
    settings = fresh_lake(services, "cf")
    lake = lakehouse(settings)
    written = write_case_files(settings.mongo, _claims(31, 1), run=0)
    assert written.inserted > 50 and written.revised == written.deleted == 0

    first = extract_case_files(settings.mongo, lake)
    assert first.run == 1 and first.upserts == written.inserted and first.deletes == 0
    assert _bronze_view(lake) == _source(settings)

    again = extract_case_files(settings.mongo, lake)
    assert again.run is None and lake.version(TABLE) == first.version  # nothing new: no commit

    later = write_case_files(settings.mongo, _claims(32, 10_000), run=1)
    assert later.revised > 0 and later.deleted > 0
    second = extract_case_files(settings.mongo, lake)
    assert second.run == 2
    assert second.upserts == later.inserted + later.revised and second.deletes == later.deleted
    assert _bronze_view(lake) == _source(settings)

    rows = lake.read_table(TABLE)
    runs = Counter(zip(rows.column("document_id").to_pylist(), rows.column("extract_run").to_pylist(), strict=True))
    assert max(runs.values()) == 1  # no document twice in one extraction
    assert lake.transaction_version(TABLE, first.source) == 2
    # schema version 2's fields reach bronze as the source holds them (drift is silver's business)
    revised = [doc for doc in _bronze_view(lake).values() if doc["schema_version"] == 2]
    assert revised and all("adjuster" in doc and "fraud_indicators" in doc for doc in revised)


def test_a_crash_between_reading_and_committing_loses_and_repeats_nothing(services: Settings) -> None:
    settings = fresh_lake(services, "cfcrash")
    lake = lakehouse(settings)
    write_case_files(settings.mongo, _claims(41, 1), run=0)
    extract_case_files(settings.mongo, lake)
    write_case_files(settings.mongo, _claims(42, 10_000), run=1)
    before = lake.version(TABLE)

    def crash(rows: int) -> None:
        assert rows > 0
        raise KeyboardInterrupt("killed between reading and committing")

    with pytest.raises(KeyboardInterrupt):
        extract_case_files(settings.mongo, lake, before_commit=crash)
    assert lake.version(TABLE) == before  # nothing half-written

    resumed = extract_case_files(settings.mongo, lake)
    assert resumed.run == 2 and resumed.upserts > 0
    assert _bronze_view(lake) == _source(settings)
    rows = lake.read_table(TABLE)
    per_run = Counter(zip(rows.column("document_id").to_pylist(), rows.column("extract_run").to_pylist(), strict=True))
    assert max(per_run.values()) == 1
    assert extract_case_files(settings.mongo, lake).run is None


def test_writing_the_same_run_twice_changes_nothing_at_the_source(services: Settings) -> None:
    settings = fresh_lake(services, "cfrepeat")
    claims = _claims(51, 1)
    write_case_files(settings.mongo, claims, run=0)
    later = _claims(52, 10_000)
    first = write_case_files(settings.mongo, later, run=1)
    snapshot = _source(settings)
    again = write_case_files(settings.mongo, later, run=1)
    assert (again.inserted, again.revised) == (0, 0) and first.inserted > 0
    assert _source(settings) == snapshot


def test_the_command_extracts_and_says_so_in_one_line(services: Settings) -> None:
    settings = fresh_lake(services, "cfcli")
    write_case_files(settings.mongo, _claims(61, 1), run=0)
    done = invoke_cli(settings, "extract", "mongo", "--json")
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["run"] == 1 and summary["upserts"] > 0 and summary["deletes"] == 0
    quiet = invoke_cli(settings, "extract", "mongo")
    assert quiet.exit_code == 0 and "nothing new since the last extraction" in quiet.output


def test_a_store_that_does_not_answer_is_one_line(services: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = fresh_lake(services, "cfdown")
    monkeypatch.setenv("MDSLAB_MONGO__URL", "mongodb://127.0.0.1:1")
    refused = invoke_cli(settings, "extract", "mongo")
    assert refused.exit_code == 1
    assert "the document store (MongoDB protocol) does not answer at 127.0.0.1:1" in refused.output
    assert "mdslab up" in refused.output and "Traceback" not in refused.output
    assert not lakehouse(settings).exists(TABLE)
