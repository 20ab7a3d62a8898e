"""Spark's History Server, run from PySpark's own jars: the Spark UI of every application the lab ran.

Every Spark session the lab starts writes its event log (``spark.eventLog.*``, see
:func:`mdslab.compute.spark.spark_configs`) to one folder; the History Server replays those logs into the
jobs, stages, SQL plans and executors pages Spark's live UI shows, and into its REST API
(``/api/v1/applications``). Why from PySpark's jars: they are already installed (no Spark distribution
to download, no Maven), and the server class is in ``spark-core``.

The server binds to 127.0.0.1 (``SPARK_LOCAL_IP``): Spark's web UIs otherwise listen on every interface.
"""

from __future__ import annotations

from pathlib import Path

from mdslab.compute.java import JAVA17_OPTIONS, log4j2_console
from mdslab.compute.web_uis import LOOPBACK
from mdslab.settings import Settings

HISTORY_SERVER_CLASS = "org.apache.spark.deploy.history.HistoryServer"


def event_log_dir(settings: Settings) -> Path:
    """Where the lab's Spark applications write their event logs (the setting, else the state dir's)."""
    return settings.compute.spark_event_log_dir or settings.state_dir / "spark-events"


def pyspark_jars() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


def history_server_command(java_home: Path, settings: Settings, *, port: int) -> list[str]:
    """The ``java`` command that runs the History Server over :func:`event_log_dir` on ``port``."""
    logs = event_log_dir(settings)
    logs.mkdir(parents=True, exist_ok=True)  # the server refuses to start on a missing folder
    log_config = settings.state_dir / "spark-history-log4j2.properties"
    log_config.parent.mkdir(parents=True, exist_ok=True)
    log_config.write_text(log4j2_console("warn"))  # Spark's defaults log every replayed file at INFO
    return [
        str(java_home / "bin" / "java"),
        "-Xmx512m",
        *JAVA17_OPTIONS,
        f"-Dlog4j2.configurationFile={log_config.as_uri()}",
        f"-Dspark.history.fs.logDirectory={logs.as_uri()}",
        f"-Dspark.history.ui.port={port}",
        "-Dspark.history.fs.update.interval=2s",  # a run that just ended shows up within seconds
        "-cp",
        f"{pyspark_jars()}/*",
        HISTORY_SERVER_CLASS,
    ]


def history_server_environment(base: dict[str, str]) -> dict[str, str]:
    """``base`` with the variables that keep the server on the loopback interface."""
    return {**base, "SPARK_LOCAL_IP": LOOPBACK, "SPARK_PUBLIC_DNS": LOOPBACK}
