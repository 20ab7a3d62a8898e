"""The compute layer's web UIs follow the settings: Spark's live UI on with a local Ray only (Spark binds it
where the driver binds, which a cluster's driver opens to the network), on the configured port; Ray's
dashboard only when asked for, on the node's address, and on a free port even when the configured one is
taken (Ray refuses to start on a taken one it was given). No Ray or JVM starts here."""

from __future__ import annotations

import socket

from mdslab.compute.ray_runtime import _dashboard_options
from mdslab.compute.spark import spark_configs
from mdslab.compute.web_uis import compute_web_uis
from mdslab.settings import ComputeSettings


def test_spark_configs_serve_the_live_ui_with_a_local_ray_only_on_the_configured_port() -> None:
    local = spark_configs(ComputeSettings(spark_ui_port=4999))
    assert (local["spark.ui.enabled"], local["spark.ui.port"]) == ("true", "4999")
    assert spark_configs(ComputeSettings(spark_ui=False))["spark.ui.enabled"] == "false"
    assert spark_configs(ComputeSettings(ray_address="head:6379"))["spark.ui.enabled"] == "false"


def test_mdslab_config_names_each_ui_where_it_is_or_how_to_turn_it_on() -> None:
    uis = {ui.name: ui for ui in compute_web_uis(ComputeSettings())}
    assert uis["Spark UI"].url == "http://127.0.0.1:4040"
    assert uis["Spark History Server"].url == "http://127.0.0.1:18080"
    assert uis["Ray dashboard"].url is None and "MDSLAB_COMPUTE__RAY_DASHBOARD=true" in uis["Ray dashboard"].why
    on = {ui.name: ui.url for ui in compute_web_uis(ComputeSettings(ray_dashboard=True, ray_dashboard_port=8300))}
    assert on["Ray dashboard"] == "http://127.0.0.1:8300"
    cluster = {ui.name: ui for ui in compute_web_uis(ComputeSettings(ray_address="head:6379", ray_dashboard=True))}
    assert cluster["Spark UI"].url is None and "every interface" in cluster["Spark UI"].why
    assert cluster["Ray dashboard"].url is None and "head:6379" in cluster["Ray dashboard"].why


def test_the_ray_dashboard_is_opt_in_on_the_node_address_and_moves_off_a_taken_port() -> None:
    assert _dashboard_options(ComputeSettings()) == {"include_dashboard": False}
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        options = _dashboard_options(ComputeSettings(ray_dashboard=True, ray_dashboard_port=taken))
    assert options == {"include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": None}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert _dashboard_options(ComputeSettings(ray_dashboard=True, ray_dashboard_port=free))["dashboard_port"] == free
