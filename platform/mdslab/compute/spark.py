"""A real PySpark session whose master and executors run as Ray actors (RayDP).

Spark on Ray rather than a local-mode Spark so that the same code runs on a laptop and on a Ray cluster
(``MDSLAB_COMPUTE__RAY_ADDRESS``), and so that Spark and Ray Data exchange Arrow blocks through Ray's
object store instead of files (see :mod:`mdslab.compute.exchange`).

A session costs 10-20 s and 2-4 GB to start, so one process keeps one: :func:`start_spark` returns the
running session when there is one, and :func:`spark_session` only stops a session it started.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import ray
import raydp
from pyspark.sql import SparkSession

from mdslab.compute.exchange import prestart_exchange, release_all_spark_inputs
from mdslab.compute.java import JAVA17_OPTIONS, find_java_home, log4j2_console, use_java_in_this_process
from mdslab.compute.ray_runtime import dashboard_url, ensure_ray
from mdslab.compute.web_uis import live_ui_enabled
from mdslab.errors import ConfigurationError
from mdslab.settings import ComputeSettings

SPARK_LOG_LEVEL = "ERROR"

# The driver JVM's log4j2 configuration. RayDP points the driver at a file name that no jar contains,
# so without one log4j2 complains ("Reconfiguration failed") and Spark falls back to chatty defaults.
# The gateway logger at the root's level stops PySpark's "Setting default log level" notice.
_DRIVER_LOG4J2 = log4j2_console("error", loggers=("org.apache.spark.api.python.PythonGatewayServer",))


@dataclass(frozen=True)
class SparkRuntime:
    """A running Spark session and what it cost to get it.

    ``started_in_s`` is the wall time of the first start (Ray included) in this process, also when the
    session is handed out again, so that pipeline metrics can tell session start-up from work;
    ``reused`` says whether this call found the session already running.
    """

    spark: SparkSession
    started_in_s: float
    reused: bool = False

    @property
    def ui_url(self) -> str | None:
        """Where the session's live Spark UI answers (the port Spark got: the next one when the setting's
        was taken), while it runs; None with the UI off."""
        url: str | None = self.spark.sparkContext.uiWebUrl
        return url

    @property
    def live_uis(self) -> dict[str, str]:
        """The web UIs that show this session at work while it lives, by name: Spark's UI and, when the
        Ray under it serves one, Ray's dashboard (see ``MDSLAB_COMPUTE__SPARK_UI``, ``..._RAY_DASHBOARD``)."""
        found = {"Spark UI": self.ui_url, "Ray dashboard": dashboard_url()}
        return {name: url for name, url in found.items() if url}


_lock = threading.RLock()
_current: SparkRuntime | None = None


def spark_configs(settings: ComputeSettings, event_log_dir: Path | None = None) -> dict[str, str]:
    """The Spark configuration every mdslab session uses (``event_log_dir``: where the application's
    event log goes, for Spark's History Server; None: no event log).

    The Java 17 ``--add-opens`` options go to every JVM: the driver (launched by PySpark), RayDP's app
    master (launched by a Ray actor, which reads only its own key) and the executors, and so does the
    place for a crashed JVM's report (the JVM's default is its working directory: the user's project).
    Timestamps are kept in UTC so the values that reach Delta do not depend on the machine's time zone.
    """
    java_options = " ".join([*JAVA17_OPTIONS, f"-XX:ErrorFile={_scratch_dir() / 'hs_err_pid%p.log'}"])
    configs = {
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.driver.extraJavaOptions": java_options,
        "spark.executor.extraJavaOptions": java_options,
        "spark.ray.raydp_app_master.extraJavaOptions": java_options,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.adaptive.coalescePartitions.enabled": "true",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.enabled": str(live_ui_enabled(settings)).lower(),
        "spark.ui.port": str(settings.spark_ui_port),
        "spark.ui.showConsoleProgress": "false",
        "spark.log4j.config.file.name": str(_driver_log4j2_file()),
    }
    if event_log_dir is not None:
        event_log_dir.mkdir(parents=True, exist_ok=True)  # Spark refuses to start without the folder
        configs["spark.eventLog.enabled"] = "true"
        configs["spark.eventLog.dir"] = event_log_dir.as_uri()
    if settings.ray_address is None:
        # Executors on this machine run Python UDFs with this interpreter; a cluster's nodes bring theirs.
        configs["spark.pyspark.python"] = sys.executable
        configs["spark.pyspark.driver.python"] = sys.executable
    return configs


def start_spark(
    settings: ComputeSettings, app_name: str = "mdslab", *, event_log_dir: Path | None = None
) -> SparkRuntime:
    """Return this process's Spark session, starting Ray and Spark if none is running (``event_log_dir``:
    see :func:`spark_configs`).

    A running session is reused whatever ``settings``/``app_name`` ask for: RayDP allows one session per
    process, and restarting it would cost far more than any sizing difference gains. Call
    :func:`stop_spark` first to resize.
    """
    global _current
    with _lock:
        if _current is not None:
            if _is_alive(_current.spark):
                return SparkRuntime(_current.spark, _current.started_in_s, reused=True)
            stop_spark()  # a dead session still holds RayDP's one-per-process slot
        started = time.perf_counter()
        java_home = find_java_home(settings.java_home)
        use_java_in_this_process(java_home)
        ensure_ray(settings)
        if settings.ray_address is None:
            _check_cpus_left_for_ray_data(settings)
            # PySpark takes its Python workers' interpreter from this variable of the driver process (not
            # from spark.pyspark.python); without it executors run `python3` from PATH, which outside an
            # activated venv has no pyspark.
            os.environ["PYSPARK_PYTHON"] = sys.executable
        spark = raydp.init_spark(
            app_name=app_name,
            num_executors=settings.spark_executors,
            executor_cores=settings.spark_executor_cores,
            executor_memory=settings.spark_executor_memory,
            placement_group_strategy=settings.spark_placement or None,
            configs=spark_configs(settings, event_log_dir),
        )
        spark.sparkContext.setLogLevel(SPARK_LOG_LEVEL)
        prestart_exchange()
        _current = SparkRuntime(spark, time.perf_counter() - started)
        return _current


def stop_spark() -> None:
    """Stop the session and release its executors' Ray CPUs; Ray itself keeps running.

    Blocks pinned for DataFrames of this session are freed too: no plan can read them any more.
    """
    global _current
    with _lock:
        _current = None
        release_all_spark_inputs()
        raydp.stop_spark()


@contextmanager
def spark_session(settings: ComputeSettings, app_name: str = "mdslab") -> Iterator[SparkRuntime]:
    """Use a Spark session for the duration of a block.

    Stops the session on exit only if this block started it, so that nested pipeline steps inside a
    flow (or tests sharing a module session) do not pay the start-up again.
    """
    runtime = start_spark(settings, app_name)
    try:
        yield runtime
    finally:
        if not runtime.reused:
            stop_spark()


class ComputeSizingError(ConfigurationError):
    """Spark executors would take every Ray CPU, and Ray Data tasks would wait forever."""


def _check_cpus_left_for_ray_data(settings: ComputeSettings) -> None:
    """Fail fast instead of hanging.

    RayDP executors hold their CPUs for the session's life, and every read into or out of Spark runs Ray
    tasks that need a CPU of their own.
    """
    total = int(ray.cluster_resources().get("CPU", 0))  # type: ignore[no-untyped-call]
    executor_cpus = settings.spark_executors * settings.spark_executor_cores
    if total <= executor_cpus:
        raise ComputeSizingError(
            f"Ray has {total} CPUs and the Spark executors would take {executor_cpus}, leaving none for "
            f"Ray Data: set MDSLAB_COMPUTE__RAY_NUM_CPUS to at least {executor_cpus + 2} (logical CPUs "
            "may exceed the cores) or lower MDSLAB_COMPUTE__SPARK_EXECUTOR_CORES."
        )


def _scratch_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"mdslab-{os.getuid()}"


def _driver_log4j2_file() -> Path:
    path = _scratch_dir() / "spark-driver-log4j2.properties"
    if not path.is_file() or path.read_text() != _DRIVER_LOG4J2:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(f".{os.getpid()}.tmp")
        staging.write_text(_DRIVER_LOG4J2)
        staging.replace(path)
    return path


def _is_alive(spark: SparkSession) -> bool:
    context = spark.sparkContext
    return context._jsc is not None and not context._jsc.sc().isStopped()
