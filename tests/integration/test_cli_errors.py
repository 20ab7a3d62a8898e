"""Known failures reach the user as one actionable line, not a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mdslab.cli.main import app
from mdslab.settings import Settings

pytestmark = pytest.mark.integration


def test_up_with_a_missing_jdk_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["up"], env={"MDSLAB_STATE_DIR": str(tmp_path), "MDSLAB_COMPUTE__JAVA_HOME": str(tmp_path / "nojdk")}
    )
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[0].startswith("error:") and "Traceback" not in result.output
    assert "JAVA_HOME" in result.output or "JDK" in result.output


def test_pipeline_without_data_names_the_missing_table(services: Settings, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["pipeline", "run", "--step", "silver_claims"],
        env={"MDSLAB_LAKE__RAW_BUCKET": "no-such-raw", "MDSLAB_LAKE__CURATED_BUCKET": "no-such-curated"},
    )
    assert result.exit_code == 1
    assert "error: bucket no-such-raw does not exist at http://127.0.0.1" in result.output


def test_status_exits_nonzero_when_services_are_down(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["status"],
        env={"MDSLAB_STATE_DIR": str(tmp_path), "MDSLAB_S3__ENDPOINT_URL": "http://127.0.0.1:9", "COLUMNS": "200"},
    )
    assert result.exit_code == 1
    assert "mdslab up" in result.output


def test_pipeline_before_any_data_names_the_missing_table(isolated: Callable[[], Settings]) -> None:
    lake = isolated().lake
    env = {"MDSLAB_LAKE__RAW_BUCKET": lake.raw_bucket, "MDSLAB_LAKE__CURATED_BUCKET": lake.curated_bucket}
    result = CliRunner().invoke(app, ["pipeline", "run", "--step", "silver_claims"], env=env)
    assert result.exit_code == 1
    assert "error: step silver_claims needs table bronze.claims, which does not exist yet" in result.output
