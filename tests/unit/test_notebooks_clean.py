"""Notebooks are committed without outputs: outputs hold one machine's data (and can hold secrets), make
every diff noisy, and go stale; the test suite executes each notebook instead (tests/integration/test_notebooks.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "notebooks/ should hold the lab's notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_a_notebook_is_committed_without_outputs(path: Path) -> None:
    cells = json.loads(path.read_text())["cells"]
    dirty = [
        index
        for index, cell in enumerate(cells)
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} keep outputs; clear them (JupyterLab: Edit > Clear Outputs of All Cells, "
        "or `jupyter nbconvert --clear-output --inplace`)"
    )
