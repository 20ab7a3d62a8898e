"""Mistakes a person makes on the command line are refused up front, in one line, before any work or
service is touched (no services run in these tests: a command that reached for one would fail)."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mdslab.cli.main import app


@pytest.fixture(autouse=True)
def _nothing_running(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MDSLAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MDSLAB_POSTGRES__PORT", "1")  # nothing listens there


@pytest.mark.parametrize("command", [["rag", "index"], ["run", "llm"]])
def test_a_missing_docs_folder_is_named_before_any_work(command: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    result = CliRunner().invoke(app, [*command, "--docs", str(missing)], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert f"'{missing}' does not exist" in result.output


def test_a_short_vacuum_retention_needs_force() -> None:
    result = CliRunner().invoke(app, ["optimize", "--retain-hours", "1"], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "--retain-hours 1 would delete files" in result.output and "add --force" in result.output


def test_an_unknown_table_to_optimize_is_named_with_the_known_ones() -> None:
    result = CliRunner().invoke(app, ["optimize", "--table", "silver.transaction"], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert "unknown table 'silver.transaction'; known tables:" in result.output
    assert "silver.transactions" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("target", ["api", "kafka", "lake"])
def test_simulate_with_postgresql_down_says_so_in_one_line(target: str) -> None:
    result = CliRunner().invoke(app, ["simulate", "--rows", "1000", "--target", target], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: PostgreSQL at 127.0.0.1:1/"), result.output
    assert "mdslab up" in result.output and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    "command,what",
    [
        (["stream", "--metrics-port", "{port}"], "the consumer's metrics"),
        (["serve", "--port", "{port}"], "the API"),
        (["prometheus", "--port", "{port}"], "Prometheus"),
        (["console", "--port", "{port}"], "the lab console"),
    ],
)
def test_a_taken_port_names_its_holder_before_anything_is_printed(command: list[str], what: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        args = [part.format(port=port) for part in command]
        result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    if command[0] == "prometheus" and shutil.which("prometheus") is None:
        assert "no `prometheus` on PATH" in result.output
        return
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"error: port {port} on 127.0.0.1 ({what}) is taken by "), result.output
    assert f"(pid {os.getpid()})" in result.output


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "lab.example.org"])
def test_the_console_refuses_to_listen_beyond_this_machine(host: str) -> None:
    result = CliRunner().invoke(app, ["console", "--host", host, "--port", "8599"], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"error: --host {host} is not a loopback address: the lab console has no login")
    assert "ssh -L 8599:127.0.0.1:8599" in result.output and "Traceback" not in result.output


def test_a_flow_parameter_of_the_wrong_type_is_refused_before_prefect_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mdslab.orchestration.prefect import prefect_environment
    from mdslab.settings import load_settings

    (tmp_path / "state").mkdir()
    for key, value in prefect_environment(load_settings()).items():
        monkeypatch.setenv(key, value)  # the command sets these for the process: undone after this test
    args = ["flow", "run", "financial-data-lake-pipeline", "-p", "simulate_rows=abc", "-p", "force=maybe"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert "simulate_rows: Input should be a valid integer" in result.output
    assert "force: Input should be a valid boolean" in result.output
    assert "Traceback" not in result.output and "Prefect" not in result.output


# --- catalog and lineage ----------------------------------------------------------------------------


def test_the_catalog_answers_without_any_service() -> None:
    result = CliRunner().invoke(app, ["catalog", "--tag", "pii.email", "--json"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    found = {(hit["table"], hit["column"]) for hit in json.loads(result.output)}
    assert ("bronze.customers", "email") in found and all(hit[1] is not None for hit in found)


@pytest.mark.parametrize(
    ("command", "code", "says"),
    [
        (["catalog", "--layer", "golden"], 1, "error: --layer 'golden' is not a layer: use bronze, silver or gold"),
        (["catalog", "show", "silver.claim"], 1, "no table 'silver.claim' in the catalog; did you mean silver.claims"),
        (["lineage", "gold.daily_spend", "--json", "--dot"], 1, "error: choose one of --json, --mermaid, --dot"),
        (
            ["lineage", "gold.daily_spend", "--depth", "0"],
            2,
            "Invalid value for '--depth': Input should be greater than or equal to 1",
        ),
        (
            ["lineage", "runs", "--limit", "0"],
            2,
            "Invalid value for '--limit' / '-n': Input should be greater than or equal to 1",
        ),
        (["lineage", "gold.daily_spend"], 1, "error: PostgreSQL at 127.0.0.1:1/"),
        (["lineage", "runs"], 1, "error: PostgreSQL at 127.0.0.1:1/"),
    ],
)
def test_catalog_and_lineage_mistakes_are_one_line(command: list[str], code: int, says: str) -> None:
    result = CliRunner().invoke(app, command, env={"COLUMNS": "300"})
    assert result.exit_code == code, result.output
    assert says in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output


def test_lineage_flush_with_nothing_spooled_says_so() -> None:
    result = CliRunner().invoke(app, ["lineage", "flush"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "0 spooled lineage event(s) sent; none waiting" in result.output


def test_lineage_flush_with_the_store_down_keeps_the_events_and_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import logging

    from mdslab.settings import load_settings

    # the command's own logging, as in a fresh process: not handlers other tests left on the root logger
    # (Prefect's, writing to a stream an earlier CliRunner closed, prints a "Logging error" traceback)
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    from mdslab.workloads.lineage.delivery import lineage_emitter

    spool = lineage_emitter(load_settings()).spool_dir  # where events for this (unreachable) store wait
    spool.mkdir(parents=True)
    event = {"eventTime": "2026-12-07T10:00:00+00:00", "run": {"runId": "r"}, "job": {"namespace": "n", "name": "j"}}
    (spool / "00000000000000000001-1-000000.json").write_text(json.dumps(event))
    result = CliRunner().invoke(app, ["lineage", "flush"], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert "error: 0 spooled lineage event(s) sent, 1 still waiting: the lineage sink does not answer" in " ".join(
        result.output.split()
    )
    assert "Traceback" not in result.output and len(list(spool.glob("*.json"))) == 1
