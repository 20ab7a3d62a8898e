"""What a person reads in an 80-column terminal or a pipe: whole names, help wrapped by the terminal."""

from __future__ import annotations

import inspect
import io
from datetime import UTC, datetime
from typing import Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from mdslab.cli import context
from mdslab.cli.lake import TABLE_ROWS_OPTIONAL, table_rows
from mdslab.cli.main import app
from mdslab.cli.pipeline import STEPS_OPTIONAL, _steps_table
from mdslab.cli.services import _print_reports
from mdslab.lakehouse.tables import TableInfo
from mdslab.services.embedded import ServiceReport
from mdslab.workloads.lake import build_registry
from mdslab.workloads.pipeline.step_runtime import StepResult


def _infos() -> list[TableInfo]:
    return [
        TableInfo(
            name=spec.name,
            layer=spec.layer,
            uri=f"s3://lake/{spec.path}",
            description=spec.description,
            version=1234,
            rows=12_345_678,
            files=321,
            size_bytes=7_654_321_000,
            last_operation="MERGE (incremental, 30 partitions)",
            last_commit=datetime(2026, 12, 6, 11, 0, tzinfo=UTC),
            published=1233,
        )
        for spec in build_registry()
    ]


@pytest.mark.parametrize("width", [80, 60, 40])
def test_table_names_are_never_cut(width: int) -> None:
    infos = _infos()
    out = Console(width=width, file=io.StringIO(), color_system=None, record=True)
    context.print_table(table_rows(infos), drop_first=TABLE_ROWS_OPTIONAL, to=out)
    text = out.export_text()
    for info in infos:
        assert info.name in text, f"{info.name} cut at {width} columns:\n{text}"
    assert "…" not in text


def test_less_important_columns_go_first_and_only_when_needed() -> None:
    wide = Console(width=200, file=io.StringIO(), color_system=None, record=True)
    context.print_table(table_rows(_infos()), drop_first=TABLE_ROWS_OPTIONAL, to=wide)
    assert "committed (UTC)" in wide.export_text()
    narrow = Console(width=60, file=io.StringIO(), color_system=None, record=True)
    context.print_table(table_rows(_infos()), drop_first=TABLE_ROWS_OPTIONAL, to=narrow)
    text = narrow.export_text()
    assert "committed" not in text
    assert "version" in text  # what a person came for stays


def test_step_names_are_never_cut() -> None:
    results = [
        StepResult(
            step=spec.name.replace(".", "_"),
            status="built",
            inputs={f"bronze:{name}": 41 for name in ("bronze.transactions", "bronze.fraud_labels")},
            outputs={spec.name: 7},
            rows_in=5_000_000,
            rows_out={spec.name: 4_999_999},
            seconds=123.4,
            mode="incremental",
        )
        for spec in build_registry()
        if spec.layer != "bronze"
    ]
    out = Console(width=80, file=io.StringIO(), color_system=None, record=True)
    context.print_table(_steps_table(results), drop_first=STEPS_OPTIONAL, to=out)
    text = out.export_text()
    for result in results:
        assert result.step in text
    assert "…" not in text


def test_service_names_and_endpoints_are_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    out = Console(width=80, file=io.StringIO(), color_system=None, record=True)
    monkeypatch.setattr(context, "console", out)
    endpoint = "http://127.0.0.1:18333/a-rather-long-path-to-show-folding"
    _print_reports(
        [
            ServiceReport("postgres", endpoint, False, "not reachable (nothing listening)", "STOPPED", 123456, 99999),
            ServiceReport("s3", "http://127.0.0.1:8333", True, "ok", "RUNNING", 1, 2),
        ]
    )
    text = out.export_text()
    assert "postgres" in text
    assert "…" not in text
    assert "".join(line.strip(" │┃") for line in text.splitlines()).count("18333") == 1


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command and sub-command (Typer's own click, so by shape rather than class)."""
    found: list[tuple[tuple[str, ...], Any]] = []
    for name, command in sorted(group.commands.items()):
        found.append(((*prefix, name), command))
        if hasattr(command, "commands"):
            found.extend(_commands(command, (*prefix, name)))
    return found


ROOT = typer.main.get_command(app)


# `airflow exec` hands --help to Airflow itself
DOCUMENTED = [found for found in _commands(ROOT) if found[0] != ("airflow", "exec")]


@pytest.mark.parametrize("path,command", DOCUMENTED, ids=[" ".join(path) for path, _ in DOCUMENTED])
def test_help_is_wrapped_by_the_terminal_not_the_source(path: tuple[str, ...], command: Any) -> None:
    """A wide terminal shows each paragraph of a command's description on one line (no hard breaks)."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "1000", "TERMINAL_WIDTH": "1000"})
    assert result.exit_code == 0, result.output
    description = result.output.split("╭")[0]
    lines = [line.strip() for line in description.splitlines() if line.strip()]
    help_text = inspect.cleandoc(command.help or "").partition("\f")[0]
    paragraphs = [p for p in help_text.split("\n\n") if p.strip()]
    # the usage line, then one line per paragraph
    assert len(lines) == 1 + len(paragraphs), f"{' '.join(path)}:\n{description}"


def test_an_error_message_with_brackets_is_printed_as_text_not_markup() -> None:
    """Seen in a fresh clone: `error: ... see [/root/.local/state/mdslab/logs/postgres.log]` became a
    rich MarkupError traceback instead of the one line."""
    from mdslab.errors import MdslabError

    @context.one_line_errors
    def failing() -> None:
        raise MdslabError("PostgreSQL did not start [/root/.local/state/mdslab/logs/postgres.log]")

    broken = typer.Typer()
    broken.command()(failing)
    result = CliRunner().invoke(broken, [], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert "[/root/.local/state/mdslab/logs/postgres.log]" in result.output
    assert "Traceback" not in result.output
