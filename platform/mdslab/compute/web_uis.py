"""Where the compute layer's own web UIs answer, from the settings alone: Spark's live UI, Spark's History
Server and Ray's dashboard.

Cheap to import (no Ray, no PySpark): `mdslab config` lists these, and a page that links the lab's UIs
can too. The live ones exist only while a process holds a Spark session; the URL a running session
actually got (Spark moves to the next port when one is taken) is
:attr:`mdslab.compute.spark.SparkRuntime.live_uis`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mdslab.settings import ComputeSettings

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class WebUi:
    """One UI: ``url`` None when the settings turn it off (``why`` then says how to turn it on)."""

    name: str
    url: str | None
    why: str


def live_ui_enabled(settings: ComputeSettings) -> bool:
    """Whether Spark sessions serve the live UI: when asked for, and only with a local Ray.

    Spark 3.5 binds its web UI to ``SPARK_LOCAL_IP`` and, without it, to every interface: there is no
    ``spark.ui.host``, and ``spark.driver.bindAddress`` does not apply to the UI. A local Ray sets
    ``SPARK_LOCAL_IP`` to ``bind_address`` in this process (:func:`mdslab.compute.ray_runtime.ensure_ray`)
    before PySpark launches the driver JVM; a cluster's driver must stay reachable from other nodes, so
    its UI would be too. There, `mdslab spark history` shows the same pages from the event logs."""
    return settings.spark_ui and settings.ray_address is None


def compute_web_uis(settings: ComputeSettings) -> list[WebUi]:
    """The compute layer's UIs, in the order a person looks for them while a job runs."""
    host = settings.bind_address
    if live_ui_enabled(settings):
        spark_ui = WebUi(
            "Spark UI",
            f"http://{host}:{settings.spark_ui_port}",
            "while Spark runs (`pipeline run` full builds, `train`, `sql --engine spark`); if taken, the next port",
        )
    else:
        why = "a Ray cluster's driver would serve it on every interface" if settings.ray_address else "turned off"
        spark_ui = WebUi("Spark UI", None, f"off: {why} (MDSLAB_COMPUTE__SPARK_UI)")
    history = WebUi(
        "Spark History Server",
        f"http://{LOOPBACK}:{settings.spark_history_port}",
        "while `mdslab spark history` runs: the finished Spark applications",
    )
    if settings.ray_address:
        ray = WebUi("Ray dashboard", None, f"the cluster's own (its head node; GCS {settings.ray_address})")
    elif settings.ray_dashboard:
        ray = WebUi(
            "Ray dashboard",
            f"http://{host}:{settings.ray_dashboard_port}",
            "while a local Ray runs (with Spark); if taken, the next free one from 8265; it asks for Ray's "
            "token: `ray get-auth-token`",
        )
    else:
        ray = WebUi("Ray dashboard", None, "off: MDSLAB_COMPUTE__RAY_DASHBOARD=true turns it on")
    return [spark_ui, history, ray]
