"""Airflow as the lab runs it: the environment that points it at the lab's DAGs and PostgreSQL, the
metadata database made ready, and `airflow standalone` started and stopped cleanly.

Airflow reads its configuration from AIRFLOW__* variables; everything here derives them from the
settings, so `mdslab airflow` and the tests run the same Airflow the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from mdslab import database
from mdslab.errors import ServiceUnavailableError
from mdslab.settings import LineageTransport, Settings

DAG_ID = "financial_data_lake_pipeline"
AIRFLOW_NAMESPACE = "airflow"  # OpenLineage namespace of the DAG and task runs
LAB_TRANSPORT = "mdslab.workloads.lineage.delivery.LabTransport"  # by name: the ground floor imports no workload
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"


def dags_folder() -> Path:
    import mdslab.dags

    return Path(mdslab.dags.__file__).parent


def airflow_home(settings: Settings) -> Path:
    return settings.state_dir / "airflow"


def airflow_environment(settings: Settings) -> dict[str, str]:
    """The process environment for any `airflow` command against the lab.

    The venv's bin goes first on PATH because `airflow standalone` starts its components as `airflow`
    from PATH; the execution API URL follows the port, or tasks cannot report back (connection refused).
    """
    orchestration = settings.orchestration
    port = orchestration.airflow_port
    bin_dir = str(Path(sys.executable).parent)
    return {
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
        "AIRFLOW_HOME": str(airflow_home(settings)),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder()),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": str(orchestration.airflow_parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(orchestration.airflow_parallelism),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": settings.api.host,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": settings.postgres.dsn(
            orchestration.airflow_database, driver="postgresql+psycopg"
        ),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        # the OpenLineage provider reports DAG and task runs where the lab's own runs go (the parents of
        # the pipeline, training... runs a task starts: mdslab.dags.common.run_task names them)
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": LAB_TRANSPORT}),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": AIRFLOW_NAMESPACE,
        "AIRFLOW__OPENLINEAGE__DISABLED": str(settings.lineage.transport is LineageTransport.OFF),
    }


def airflow_command(args: Sequence[str]) -> list[str]:
    """`airflow ARGS` with this interpreter's Airflow (the same venv as the library the DAGs call)."""
    return [str(Path(sys.executable).parent / "airflow"), *args]


def prepare(settings: Settings) -> dict[str, str]:
    """Create and migrate Airflow's metadata database; return the environment.

    `airflow db migrate` costs ~8 s even with nothing to do, so it is skipped when the database is at the
    schema revision this lab's last migrate left it at with the Airflow installed now (a new, wiped or
    otherwise changed database, or another Airflow version, migrates again)."""
    database.ensure_database(settings.postgres, settings.orchestration.airflow_database)
    environment = os.environ | airflow_environment(settings)
    airflow_home(settings).mkdir(parents=True, exist_ok=True)
    marker = airflow_home(settings) / "migrated.json"
    if _migrated_by_us(settings, marker):
        return environment
    migrated = subprocess.run(
        airflow_command(["db", "migrate"]), env=environment, capture_output=True, text=True, check=False
    )
    if migrated.returncode != 0:
        tail = (migrated.stderr or migrated.stdout).strip().splitlines()[-1:]
        raise ServiceUnavailableError(f"airflow db migrate failed: {' '.join(tail)}")
    marker.write_text(json.dumps(_schema_state(settings)))
    return environment


def _schema_state(settings: Settings) -> dict[str, str | None]:
    """The installed Airflow and the schema revision its metadata database is at (None: no schema)."""
    with database.connect(settings.postgres, database=settings.orchestration.airflow_database) as conn:
        table = conn.execute("SELECT to_regclass('public.alembic_version')").fetchone()
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone() if table and table[0] else None
    return {"airflow": version("apache-airflow"), "revision": row[0] if row else None}


def _migrated_by_us(settings: Settings, marker: Path) -> bool:
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    state = _schema_state(settings)
    return state["revision"] is not None and recorded == state


@dataclass(frozen=True)
class TaskState:
    task_id: str
    state: str
    seconds: float | None


@dataclass(frozen=True)
class DagRunStates:
    run_id: str
    state: str
    tasks: list[TaskState]

    def state_of(self, task_id: str) -> str:
        return next(t.state for t in self.tasks if t.task_id == task_id)


def latest_run(settings: Settings, dag_id: str) -> DagRunStates | None:
    """The newest run of ``dag_id`` and its tasks' states, read from Airflow's metadata database."""
    with database.connect(settings.postgres, database=settings.orchestration.airflow_database) as conn:
        run = conn.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = %s ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchone()
        if run is None:
            return None
        rows = conn.execute(
            "SELECT task_id, coalesce(state, 'not run'), duration FROM task_instance "
            "WHERE dag_id = %s AND run_id = %s ORDER BY start_date NULLS LAST, task_id",
            (dag_id, run[0]),
        ).fetchall()
    return DagRunStates(run[0], run[1], [TaskState(task, state, seconds) for task, state, seconds in rows])
