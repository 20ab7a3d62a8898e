"""The lab's notebooks, executed top to bottom in a real kernel (the lab's environment) against a small
built lake with the settings `mdslab notebook` hands its kernels; any cell's error fails the test with
the cell's traceback. Each notebook also has a check of what its run must show or leave behind (`CHECKS`):
a notebook that runs but shows nothing of the lab should fail too. And `mdslab notebook` itself."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

from mdslab.lakehouse import publications
from tests.integration.conftest import SPEND, Built, psutil_connections

pytestmark = pytest.mark.integration

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def lab(built: Built) -> Built:
    """The shared small lake, with an MLflow registry prefix and artifact bucket of its own: the ML notebook
    registers models and moves the champion alias, which other modules' models must not see."""
    tag = built.settings.postgres.database
    ml = built.settings.ml.model_copy(update={"registry_prefix": f"{tag}-", "artifact_bucket": f"{tag}-mlflow"})
    return dataclasses.replace(built, settings=built.settings.model_copy(update={"ml": ml}))


def _output(notebook: Any, fragment: str) -> str:
    """The text of the outputs of the first code cell whose source holds ``fragment``."""
    cell = next(cell for cell in notebook.cells if cell.cell_type == "code" and fragment in cell.source)
    return "\n".join(output.get("text") or output.get("data", {}).get("text/plain", "") for output in cell.outputs)


def _explore(lab: Built, notebook: Any) -> None:
    """Versions print as integers (not 2.0: a column with a missing version must not turn float), and the
    time-travel cell reads the first published build next to the current one."""
    lake = lab.lake
    current = lake.current_version(SPEND)
    tables = _output(notebook, "lake.info(spec.name)")
    assert re.search(rf"{re.escape(SPEND)}\s+gold\s+{lake.version(SPEND)}\s+{current}\s", tables), tables
    first = publications.history(lake.publications_uri, lake.storage_options, SPEND)[-1].version
    assert first == lab.first_spend_version
    then_and_now = _output(notebook, "spend_by_region(first)")
    assert f"v{first} (first published)" in then_and_now and f"v{current} (now)" in then_and_now


def _ml(lab: Built, notebook: Any) -> None:
    """A champion in the lab's registry, and gold.fraud_scores built by it from the published features."""
    from mdslab.ml.model_registry import champion_version
    from mdslab.tracking import configure, registered_name

    name = registered_name(lab.settings, "fraud")
    champion = champion_version(configure(lab.settings), name)
    assert champion is not None
    stamp = lab.lake.commit_metadata("gold.fraud_scores")
    assert stamp["model"] == f"{name}/{champion}"
    assert stamp["inputs"] == {"gold.fraud_features": lab.lake.current_version("gold.fraud_features")}
    assert lab.lake.row_count("gold.fraud_scores") == lab.lake.row_count("gold.fraud_features")
    assert "is the first model: it is now the champion" in _output(notebook, "trained.promotion.message")


def _rag(lab: Built, notebook: Any) -> None:
    """An index of the published claims, an answer citing a claim at its version, the citation's row read
    back from that version, and an evaluation."""
    from mdslab.llm.chain import open_store

    store = open_store(lab.settings)
    try:
        version = store.version()
        assert version is not None and version.chunks == store.count() > 0
    finally:
        store.close()
    claims = lab.lake.current_version("silver.claims")
    cited = re.search(rf"silver\.claims\s+{claims}\s+(CL\d{{8}})", _output(notebook, "answer.citations])"))
    assert cited, _output(notebook, "answer.citations])")
    assert cited.group(1) in _output(notebook, "WHERE claim_id = '{cited.row_key}'")
    assert "questions, index version" in _output(notebook, "evaluate_index(")


CHECKS: dict[str, Callable[[Built, Any], None]] = {
    "01-explore-the-lakehouse": _explore,
    "02-ml-deep-dive": _ml,
    "03-rag-deep-dive": _rag,
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_each_notebook_runs_top_to_bottom_against_the_lab(lab: Built, path: Path, tmp_path: Path) -> None:
    from nbclient import NotebookClient

    check = CHECKS.get(path.stem)
    assert check is not None, f"{path.name} has no entry in CHECKS: add what a run of it must show or leave behind"
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=os.environ | lab.settings.environment())
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count for cell in code)
    assert not [output for cell in code for output in cell.outputs if output.output_type == "error"]
    check(lab, notebook)


def test_mdslab_notebook_serves_jupyterlab_on_loopback_behind_its_token(lab: Built) -> None:
    import os
    import re
    import signal
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    from mdslab.polling import wait_until
    from tests.conftest import free_port

    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mdslab"), "notebook", "--port", str(port)],
        env=os.environ | lab.settings.environment() | {"COLUMNS": "300"}, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        token = re.search(r"/lab\?token=(\S+) ", banner)
        assert token, banner
        status: list[int] = []

        def answers() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token.group(1)}", timeout=5):
                    status.append(200)
            except urllib.error.HTTPError as refused:
                status.append(refused.code)
            except OSError:
                return False
            return True

        assert wait_until(answers, timeout_s=120, interval_s=0.5) and status[-1] == 200
        with pytest.raises(urllib.error.HTTPError) as no_token:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/kernels", timeout=5)
        assert no_token.value.code == 403
        listening = {conn.laddr.ip for conn in psutil_connections(server.pid)}
        assert listening and listening <= {"127.0.0.1", "::ffff:127.0.0.1"}, listening
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) in (0, -signal.SIGTERM, 130, 143)
