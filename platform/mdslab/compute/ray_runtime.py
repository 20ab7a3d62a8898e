"""Connect this process to Ray: a local single-node Ray by default, or a cluster named in the settings.

Ray is the substrate under both Spark (RayDP runs the Spark master and executors as Ray actors) and the
Delta <-> Spark exchange (Ray Data tasks read and convert table files), so every compute entry point
calls :func:`ensure_ray` first and gets the same, already-running Ray on later calls.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

import ray
from ray._private import ray_constants
from ray.util.debug import log_once

from mdslab.compute.java import find_java_home, java_env
from mdslab.services.ports import port_in_use
from mdslab.settings import ComputeSettings

log = logging.getLogger(__name__)

_lock = threading.Lock()
_dashboard_url: str | None = None  # where this process's Ray serves its dashboard, once ensure_ray knows


def ensure_ray(settings: ComputeSettings) -> None:
    """Start (or join) Ray once per process; later calls return at once.

    A local Ray gets ``settings.local_ray_cpus`` *logical* CPUs: RayDP executors hold their CPUs for as
    long as the Spark session lives, so Ray Data tasks need CPUs beyond the executors' or they wait
    forever. Its workers get the JDK and this interpreter through ``runtime_env`` env vars: the raylet
    starts Java workers (Spark executors) with ``java`` from ``PATH``, and PySpark's Python workers use
    ``PYSPARK_PYTHON`` (without it they start the system Python, which has no pyspark).

    With ``settings.ray_address`` set, the cluster's nodes bring their own JDK 17 and Python
    environment; paths of this machine would mean nothing there, so none are passed.

    A local Ray serves its dashboard only with ``settings.ray_dashboard`` (see :func:`dashboard_url`).
    """
    with _lock:
        if ray.is_initialized():
            return
        with _callers_sigterm_kept():
            _init(settings)
        _quiet_ray_data()


@contextlib.contextmanager
def _callers_sigterm_kept() -> Iterator[None]:
    """``ray.init`` replaces the driver's SIGTERM handler with one that exits with status 15. A caller
    that installed its own (``pipeline run --watch`` finishes its run and exits 0) keeps it."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    finally:
        if main and callable(previous):
            signal.signal(signal.SIGTERM, previous)


def dashboard_url() -> str | None:
    """``http://host:port`` of the Ray dashboard this process's Ray serves (a cluster's, or the local one's
    with ``ray_dashboard`` on); None before :func:`ensure_ray`, or when there is none."""
    return _dashboard_url


def _init(settings: ComputeSettings) -> None:
    """Start a local Ray or join the configured cluster (see :func:`ensure_ray`)."""
    global _dashboard_url
    if settings.ray_address:
        context = ray.init(
            address=settings.ray_address,
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    else:
        # Spark JVMs (the driver PySpark starts here, the executors and RayDP's master as Ray workers)
        # bind what they listen on to SPARK_LOCAL_IP; Ray's servers bind to its node IP. Without both,
        # ~20 sockets listened on every interface of the machine.
        os.environ["SPARK_LOCAL_IP"] = settings.bind_address
        _use_node_ip(settings.bind_address)
        env_vars = {
            **java_env(find_java_home(settings.java_home)),
            "PYSPARK_PYTHON": sys.executable,
            "SPARK_LOCAL_IP": settings.bind_address,
        }
        context = ray.init(
            _node_ip_address=settings.bind_address,
            _metrics_export_port=_metrics_port(settings.ray_metrics_port),
            num_cpus=settings.local_ray_cpus,
            object_store_memory=settings.ray_object_store_mb * 1024 * 1024,
            logging_level=logging.WARNING,
            log_to_driver=False,
            runtime_env={"env_vars": env_vars},
            **_dashboard_options(settings),
        )
    _dashboard_url = f"http://{context.dashboard_url}" if context.dashboard_url else None
    if _dashboard_url and settings.ray_address is None:
        log.info("Ray dashboard on %s", _dashboard_url)


def _use_node_ip(address: str) -> None:
    """Make a local Ray's node IP ``address``. Ray turns a loopback node IP into the machine's reachable
    address unless it runs in single-machine mode, the mode it uses on macOS and Windows (its servers
    then listen on loopback only); that mode is a module constant read when a node starts, and an
    environment variable for the Python processes Ray starts."""
    if ipaddress.ip_address(address).is_loopback:
        os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"
        ray_constants.ENABLE_RAY_CLUSTER = False


def _dashboard_options(settings: ComputeSettings) -> dict[str, Any]:
    """``ray.init`` options for a local Ray's dashboard: on the node's (loopback) address and the configured
    port when asked for. Without it Ray still runs its API server, headless: the metrics agent needs it.

    Ray refuses to start when an explicitly given dashboard port is taken (another local Ray, or a
    dashboard left running); the port is then left to Ray, which tries the next 50 from 8265."""
    if not settings.ray_dashboard:
        return {"include_dashboard": False}
    port: int | None = settings.ray_dashboard_port
    if port_in_use(settings.bind_address, settings.ray_dashboard_port):
        log.warning(
            "Ray dashboard port %d is taken (another local Ray?): Ray picks one from 8265 up",
            settings.ray_dashboard_port,
        )
        port = None
    return {"include_dashboard": True, "dashboard_host": settings.bind_address, "dashboard_port": port}


def _metrics_port(wanted: int) -> int | None:
    """``wanted`` if free: a second local Ray on a taken metrics port never finishes starting."""
    if not wanted:
        return None
    if port_in_use("127.0.0.1", wanted):
        log.warning("Ray metrics port %d is taken (another local Ray?): this Ray serves them on a random port", wanted)
        return None
    return wanted


def shutdown_ray() -> None:
    """Disconnect from Ray (and stop it, if this process started it).

    Stop Spark first (:func:`mdslab.compute.spark.stop_spark`): its executors are Ray actors.
    """
    global _dashboard_url
    with _lock:
        if ray.is_initialized():
            ray.shutdown()
        _dashboard_url = None


def _quiet_ray_data() -> None:
    """Keep Ray Data's progress bars and per-read plan logs off the console.

    Pipeline steps report their own progress; Ray Data's session log file keeps the full detail.
    """
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    # Ray Data warns once per process that progress bars are off; claim that "once" up front.
    log_once("ray_data_progress_manager_disabled")
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setLevel(logging.WARNING)
