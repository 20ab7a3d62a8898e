"""Commands that run the pipeline under an orchestrator: `mdslab airflow ...` and `mdslab flow ...`."""

from __future__ import annotations

import contextlib
import inspect
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from mdslab.cli.context import console, one_line_errors, settings
from mdslab.errors import MdslabError, ServiceUnavailableError
from mdslab.orchestration.airflow import DAG_ID
from mdslab.polling import wait_until
from mdslab.services.ports import require_free_port

airflow_app = typer.Typer(
    help="Airflow 3 on the lab: its metadata in the lab's PostgreSQL, the DAGs from dags/.", no_args_is_help=True
)
flow_app = typer.Typer(help="Prefect 3 flows of the same pipeline.", no_args_is_help=True)


class DagName(StrEnum):
    PIPELINE = DAG_ID
    TRAINING = "fraud_model_training"


class FlowName(StrEnum):
    PIPELINE = "financial-data-lake-pipeline"
    TRAINING = "fraud-model-training"


@airflow_app.command("up")
@one_line_errors
def airflow_up(
    port: Annotated[int | None, typer.Option(help="UI/API port (default MDSLAB_ORCHESTRATION__AIRFLOW_PORT).")] = None,
    startup_timeout: Annotated[float, typer.Option(min=10, help="Seconds to wait for the UI.")] = 300.0,
) -> None:
    """Run `airflow standalone` (API server + UI, scheduler, DAG processor, triggerer) in the foreground
    with low parallelism, until Ctrl-C or SIGTERM; then stop every Airflow process.

    Needs the services (`mdslab up`): the metadata lives in the lab's PostgreSQL (database
    MDSLAB_ORCHESTRATION__AIRFLOW_DATABASE). The DAGs start paused: unpause them in the UI.
    """
    from mdslab.cli.foreground import stop_group
    from mdslab.orchestration.airflow import PASSWORDS_FILE, airflow_command, airflow_home, prepare

    current = settings()
    if port is not None:
        current = current.model_copy(
            update={"orchestration": current.orchestration.model_copy(update={"airflow_port": port})}
        )
    bind = current.orchestration.airflow_port
    require_free_port(
        current.api.host, bind, what="Airflow", fix="pass --port or set MDSLAB_ORCHESTRATION__AIRFLOW_PORT"
    )
    with console.status("migrating Airflow's metadata database"):
        environment = prepare(current)
    home = airflow_home(current)
    log_path = home / "standalone.log"
    url = f"http://{current.api.host}:{current.orchestration.airflow_port}"
    stopping: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            airflow_command(["standalone"]),
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, and we stop Airflow in order
        )
        try:
            with console.status(f"starting Airflow (log: {log_path})"):
                _wait_healthy(f"{url}/api/v2/monitor/health", process, startup_timeout, stopping)
            console.print(f"Airflow UI on {url}", highlight=False, soft_wrap=True)
            console.print(f"user admin, password in {home / PASSWORDS_FILE}", highlight=False, soft_wrap=True)
            console.print(
                f"DAGs from {environment['AIRFLOW__CORE__DAGS_FOLDER']}; log {log_path}. Ctrl-C stops.",
                highlight=False,
                soft_wrap=True,
            )
            while process.poll() is None and not stopping:
                time.sleep(0.5)
        except KeyboardInterrupt:
            stopping.append(signal.SIGINT)
        finally:
            with console.status("stopping Airflow"):
                # every component at once: `airflow standalone` on Ctrl-C stops them one after the
                # other and took 45-75 s
                code = stop_group(process, grace_s=AIRFLOW_STOP_GRACE_S)
    if not stopping:  # Airflow ended by itself
        raise ServiceUnavailableError(f"airflow standalone exited with {code}: see {log_path}")
    console.print("Airflow stopped", style="dim")


AIRFLOW_STOP_GRACE_S = 20.0


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float, stopping: list[int]) -> None:

    def answered_or_stopping() -> bool:
        if stopping:
            return True
        if process.poll() is not None:
            raise ServiceUnavailableError(f"airflow standalone exited with {process.returncode} while starting")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(url, timeout=2).status_code == 200
        return False

    if not wait_until(answered_or_stopping, timeout_s=timeout_s, interval_s=1.0):
        raise ServiceUnavailableError(f"Airflow did not answer on {url} within {timeout_s:.0f} s")


@airflow_app.command("test")
@one_line_errors
def airflow_test(
    dag: Annotated[DagName, typer.Argument(help="DAG to run.")] = DagName.PIPELINE,
    conf: Annotated[str | None, typer.Option(help="Run parameters as JSON, e.g. '{\"simulate_rows\": 5000}'.")] = None,
) -> None:
    """Run one DAG run in this process with `airflow dags test` (no scheduler needed), then show each
    task's state. Exits 1 when the run failed.

    The console gets what each task did, warnings, errors with their tracebacks and skip reasons;
    Airflow's whole output goes to a log file named at the end (all of it on the console with
    MDSLAB_LOG_LEVEL=DEBUG)."""
    from mdslab.orchestration.airflow import airflow_home, latest_run, prepare

    current = settings()
    if conf is not None:
        try:
            json.loads(conf)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"--conf is not JSON: {exc}") from None
    with console.status("migrating Airflow's metadata database"):
        environment = prepare(current)
    args = ["dags", "test", dag.value, *(["-c", conf] if conf else [])]
    log_path = airflow_home(current) / "logs" / f"test-{dag.value}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.log"
    _airflow_quietly(args, environment, log_path, everything=current.log_level.upper() == "DEBUG")
    run = latest_run(current, dag.value)
    if run is None:
        raise MdslabError(f"no run of {dag.value} was recorded: see {log_path}")
    table = Table("task", "state", "seconds", title=f"{dag.value} {run.run_id}: {run.state}", title_justify="left")
    for item in run.tasks:
        colour = {"success": "green", "failed": "red", "upstream_failed": "red", "skipped": "yellow"}.get(item.state)
        state = f"[{colour}]{item.state}[/]" if colour else item.state
        table.add_row(item.task_id, state, f"{item.seconds:.1f}" if item.seconds is not None else "")
    console.print(table)
    console.print(f"Airflow's whole output: {log_path}", style="dim", highlight=False, soft_wrap=True)
    if run.state != "success":
        raise MdslabError(f"{dag.value} run {run.run_id} {run.state}: the failed task's error is above")


def _airflow_quietly(args: list[str], environment: dict[str, str], log_path: Path, *, everything: bool) -> None:
    """Run `airflow <args>`, every line of its output into ``log_path`` and the lines a person needs (all
    of them with ``everything``) onto the console as they come."""
    from mdslab.orchestration.airflow import airflow_command
    from mdslab.orchestration.airflow_output import ConsoleFilter

    log_path.parent.mkdir(parents=True, exist_ok=True)
    shown = ConsoleFilter()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            airflow_command(args),
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            if everything or shown.shows(line):
                sys.stdout.write(line)
                sys.stdout.flush()
        process.wait()


@airflow_app.command(
    "exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}
)
@one_line_errors
def airflow_exec(ctx: typer.Context) -> None:
    """Any `airflow` command against the lab, e.g. `mdslab airflow exec dags list`."""
    from mdslab.orchestration.airflow import airflow_command, prepare

    environment = prepare(settings())
    raise typer.Exit(subprocess.run(airflow_command(ctx.args), env=environment, check=False).returncode)


def _parameters(flow: Any, pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs checked against the flow's signature; values parsed as JSON when they are."""
    known = inspect.signature(flow.fn).parameters
    parameters: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in known:
            allowed = ", ".join(known) or "none"
            raise typer.BadParameter(f"{pair!r}: expected KEY=VALUE with KEY one of: {allowed}")
        try:
            parameters[key] = json.loads(raw)
        except json.JSONDecodeError:
            parameters[key] = raw
    from prefect.exceptions import ParameterTypeError

    try:  # the flow's own type check, before Prefect's start-up (was: 18 s, then this error)
        return dict(flow.validate_parameters(parameters))
    except ParameterTypeError as exc:
        problems = [line.strip(" -") for line in str(exc).splitlines()[1:]]
        raise typer.BadParameter("; ".join(problems) or str(exc), param_hint="--param") from None


@flow_app.command("run")
@one_line_errors
def flow_run(
    name: Annotated[FlowName, typer.Argument(help="Flow to run.")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Flow parameter KEY=VALUE (repeatable), e.g. -p simulate_rows=5000."),
    ] = None,
) -> None:
    """Run a Prefect flow here, reporting to the ephemeral API (database in the state dir) or to the
    server at MDSLAB_ORCHESTRATION__PREFECT_API_URL; then show each task run. Exits 1 if it failed."""
    from mdslab.orchestration.prefect import configure

    current = settings()
    configure(current)
    from mdslab.dags.flows import FLOWS
    from mdslab.orchestration.prefect import task_runs

    flow = FLOWS[name.value]
    state = flow(return_state=True, **_parameters(flow, param or []))
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None  # set on every state of a flow run
    runs = task_runs(flow_run_id)
    table = Table("task", "state", "seconds", "message", title=f"{name.value}: {state.name}", title_justify="left")
    for run in runs:
        colour = {"Completed": "green", "Cached": "cyan", "Skipped": "yellow", "Failed": "red"}.get(run.state)
        table.add_row(run.name, f"[{colour}]{run.state}[/]" if colour else run.state, f"{run.seconds:.1f}", run.message)
    console.print(table)
    if not state.is_completed():
        raise MdslabError(f"{name.value} {(state.name or 'failed').lower()}: {state.message}")


@flow_app.command("list")
def flow_list() -> None:
    """The flows and their parameters."""
    from mdslab.dags.flows import FLOWS

    table = Table("flow", "parameters", "what it does", title_justify="left")
    for name, flow in FLOWS.items():
        parameters = ", ".join(f"{p.name}={p.default}" for p in inspect.signature(flow.fn).parameters.values())
        table.add_row(name, parameters, (flow.description or "").split("\n")[0])
    console.print(table)
