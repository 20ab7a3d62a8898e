"""The GitHub Actions workflow is what a CI service would run: valid against GitHub's workflow schema (the
copy `check-jsonschema` vendors, offline) and running the same one command as `.ci/run` on a laptop, on
the Python the project requires. Nothing here can run the workflow itself; a schema error or a drifted
command is what these tests catch."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
CHECK = str(Path(sys.executable).parent / "check-jsonschema")


def _schema_check(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHECK, "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_there_is_a_workflow() -> None:
    assert WORKFLOWS, "no .github/workflows/*.yml"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_the_workflow_is_valid_for_github(workflow: Path) -> None:
    checked = _schema_check(workflow)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_schema_check_fails_on_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  test:\n    runs-on: ubuntu-24.04\n    steps: bash .ci/run\n")
    checked = _schema_check(broken)
    assert checked.returncode == 1 and "steps" in checked.stdout, checked.stdout + checked.stderr


def _ci() -> dict[str, Any]:
    workflow: dict[str, Any] = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    return workflow


def test_ci_runs_the_command_a_laptop_runs_on_the_required_python() -> None:
    test = _ci()["jobs"]["test"]
    runs = [step["run"] for step in test["steps"] if "run" in step]
    assert runs == ["bash .ci/run"], runs
    assert (ROOT / ".ci" / "run").exists()
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert required == ">=3.11,<3.12" and test["container"].startswith("python:3.11-"), test["container"]
    assert test["timeout-minutes"] >= 30  # the suite's budget on 2 cores, with room for a cold cache


def test_packages_are_built_only_for_a_version_tag_that_passed() -> None:
    package = _ci()["jobs"]["package"]
    assert package["needs"] == "test" and package["if"] == "startsWith(github.ref, 'refs/tags/v')"
