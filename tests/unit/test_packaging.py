"""Packaging: platform/ is a source root, never a package shadowing the stdlib; the wheel is complete."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_platform_dir_has_no_init_file() -> None:
    assert (ROOT / "platform" / "mdslab" / "__init__.py").is_file()
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_import_platform_from_repo_root_is_the_stdlib() -> None:
    code = (
        "import sys, platform; sys.path.insert(0, '.'); import importlib; print(platform.__file__, platform.system())"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    path, system = out.stdout.split()
    assert Path(path).parent == Path(os.__file__).parent
    assert system == "Linux"


def test_all_five_packages_import_from_the_one_distribution() -> None:
    code = "import mdslab, mdslab.workloads, mdslab.ml, mdslab.llm, mdslab.dags; print(mdslab.workloads.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(ROOT / "workloads" / "__init__.py")


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    assert Path(uv).exists(), "uv not found: run the tests through `make test`, which installs it in .tools/"
    return uv


def test_plain_wheel_install_imports_and_carries_its_data(tmp_path: Path) -> None:
    subprocess.run([_uv(), "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("mdslab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mdslab/workloads/contracts/schemas/transaction.v1.schema.json" in names
    assert "mdslab/ml/__init__.py" in names and "mdslab/llm/__init__.py" in names
    assert {"mdslab/dags/financial_data_lake_pipeline.py", "mdslab/dags/.airflowignore"} <= names
    console = {
        "mdslab/console/templates/index.html",
        "mdslab/console/static/console.js",
        "mdslab/console/static/console.css",
    }
    assert console <= names, "the console's pages and script ship with the package"
    assert not any(name.startswith("platform/") for name in names)
    (metadata,) = [name for name in names if name.endswith(".dist-info/METADATA")]
    assert "License-Expression: MIT" in zipfile.ZipFile(wheel).read(metadata).decode()
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    target = tmp_path / "site"
    subprocess.run(
        [_uv(), "pip", "install", "--no-deps", "--target", str(target), str(wheel)], check=True, capture_output=True
    )
    code = "import mdslab.workloads.contracts as c, mdslab; print(mdslab.__file__); print(len(c.CONTRACTS))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    )
    first, count = out.stdout.split()
    assert first.startswith(str(target))
    assert int(count) == 6
