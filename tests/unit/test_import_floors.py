"""The floors of ARCHITECTURE.md hold in the code (`make lint` runs tools/lint-imports.sh), and an
import that goes up a floor is caught: planted in a copy of the project, never in the checkout."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("platform", "workloads", "ml", "llm", "dags")


def _lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(project / "tools" / "lint-imports.sh"), str(project)],
        env=os.environ | {"PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    for name in SOURCES:
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "tools").mkdir()
    for script in ("lint-imports.sh", "package-tree.sh"):
        shutil.copy2(ROOT / "tools" / script, copy / "tools" / script)
    shutil.copy2(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def test_every_module_of_the_package_is_on_a_floor() -> None:
    """A module on no floor would escape the contract: a new one must be placed (pyproject.toml)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (floors,) = [c for c in config["contracts"] if c["type"] == "layers"]
    placed = {name.strip() for layer in floors["layers"] for name in re.split(r"[|:]", layer)}
    top = {path.stem for path in (ROOT / "platform" / "mdslab").iterdir() if path.suffix == ".py" or path.is_dir()}
    modules = {f"mdslab.{name}" for name in top - {"__init__", "__pycache__"}}
    modules |= {f"mdslab.{name}" for name in SOURCES if name != "platform"}
    assert modules - placed == set(), "place these in [tool.importlinter]'s floors"
    assert placed - modules == set(), "these floors name modules that do not exist"


def test_the_checkout_keeps_its_floors() -> None:
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("planted_in", "imports", "says"),
    [
        ("platform/mdslab/lakehouse/planted.py", "from mdslab.workloads.lake import lakehouse",
         "mdslab.lakehouse.planted -> mdslab.workloads.lake"),
        ("platform/mdslab/services/planted.py", "import mdslab.cli.main",
         "mdslab.services.planted -> mdslab.cli.main"),
        ("workloads/planted.py", "from mdslab.ml import train",
         "mdslab.workloads.planted -> mdslab.ml"),
        ("ml/planted.py", "def later() -> None:\n    from mdslab.llm import chain",
         "mdslab.ml.planted -> mdslab.llm"),
        ("llm/planted.py", "from mdslab.orchestration import tasks",
         "mdslab.llm.planted -> mdslab.orchestration"),
    ],
)  # fmt: skip
def test_an_import_up_a_floor_fails_the_lint(project: Path, planted_in: str, imports: str, says: str) -> None:
    (project / planted_in).write_text(f'"""Planted by the test."""\n\n{imports}\n')
    done = _lint_imports(project)
    assert done.returncode != 0
    assert "0 kept, 1 broken" in done.stdout
    assert says in done.stdout, done.stdout


def test_the_map_of_the_floors_is_current() -> None:
    """docs/architecture.md is written from the contract, the docstrings and the import graph."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "architecture.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    text = (ROOT / "docs" / "architecture.md").read_text()
    for module in ("mdslab.workloads", "mdslab.ml", "mdslab.llm", "mdslab.lakehouse", "mdslab.cli"):
        assert f"**`{module}`**" in text
