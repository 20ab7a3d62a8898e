"""The same pipeline on a real two-node Ray cluster: Spark executors on both nodes, the same gold.

The cluster is started with Ray's own cluster utilities (a head and a worker node, each its own raylet,
object store and workers) in a helper process; the pipeline runs as `mdslab pipeline run` with only the
settings changed (MDSLAB_COMPUTE__RAY_ADDRESS and the executor layout), as a user would point the lab at
a KubeRay or `ray up` cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mdslab.settings import Settings
from mdslab.workloads.file_drop_feed import drop_batch
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.pipeline.runner import run_pipeline
from mdslab.workloads.pipeline.steps import STEPS
from mdslab.workloads.simulation_runs import next_run
from mdslab.workloads.simulator import simulate
from tests.conftest import free_port, fresh_lake
from tests.lake_asserts import assert_same

# ~3 min (a second Ray cluster and Spark session next to the run's own): in `make test-all`, not the default lane
pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLUSTER = textwrap.dedent(
    """
    import os, sys
    from mdslab.compute.java import find_java_home, java_env
    os.environ.update(java_env(find_java_home(None), path=os.environ["PATH"]))  # raylets start Java workers
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from ray.cluster_utils import Cluster
    node = {"num_cpus": 3, "object_store_memory": 400 * 1024 * 1024}
    # the dashboard serves Ray's state API (where the executors run); on a port of the test's choosing
    head = {**node, "include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": int(sys.argv[1])}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    cluster.add_node(**node)
    cluster.wait_for_nodes()
    print(cluster.address, flush=True)
    sys.stdin.read()  # until the test closes our stdin
    cluster.shutdown()
    """
)
EXECUTOR_NODES = textwrap.dedent(
    """
    import json, sys
    import ray
    from ray.util.state import list_actors
    ray.init(address=sys.argv[1], logging_level="ERROR")
    found = list_actors(address=sys.argv[2], limit=1000, raise_on_missing_output=False)
    actors = [a for a in found if "Executor" in (a.class_name or "")]
    print(json.dumps({"executors": len(actors), "nodes": sorted({a.node_id for a in actors}),
                      "cluster_nodes": len([n for n in ray.nodes() if n["Alive"]])}))
    """
)
GOLD = [name for step in STEPS if step.layer == "gold" for name in step.outputs]


def test_the_pipeline_runs_on_a_two_node_ray_cluster_with_the_same_gold(
    services: Settings, spark_provider: Any
) -> None:
    settings = fresh_lake(services, "ray")
    lake = lakehouse(settings)
    drop_batch(settings, lake, simulate(next_run(settings.postgres, transactions=3_000, seed=51).config))
    assert run_pipeline(settings, spark=spark_provider).published
    single_node = {name: lake.read_table(name) for name in GOLD}

    dashboard = free_port()
    cluster = subprocess.Popen(
        [sys.executable, "-c", CLUSTER, str(dashboard)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        address = (cluster.stdout.readline() if cluster.stdout else "").strip()
        assert address, "the Ray cluster did not start"
        env = {
            **os.environ,
            **settings.environment(),
            "MDSLAB_COMPUTE__RAY_ADDRESS": address,
            "MDSLAB_COMPUTE__SPARK_EXECUTORS": "2",
            "MDSLAB_COMPUTE__SPARK_EXECUTOR_CORES": "1",
            "MDSLAB_COMPUTE__SPARK_EXECUTOR_MEMORY": "1g",
            "MDSLAB_COMPUTE__SPARK_PLACEMENT": "STRICT_SPREAD",  # one executor per node, or no session
            "COLUMNS": "200",
        }
        mdslab = str(Path(sys.executable).parent / "mdslab")
        built = subprocess.run(
            [mdslab, "pipeline", "run", "--full-refresh"], env=env, capture_output=True, text=True, timeout=900
        )
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        assert "built (full)" in built.stdout and "published (quality gate passed)" in built.stdout
        placed = subprocess.run(
            [sys.executable, "-c", EXECUTOR_NODES, address, f"http://127.0.0.1:{dashboard}"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert placed.returncode == 0, placed.stderr[-2000:]
        found = json.loads(placed.stdout.strip().splitlines()[-1])
        assert found["cluster_nodes"] == 2
        assert found["executors"] >= 2 and len(found["nodes"]) == 2, found
    finally:
        if cluster.stdin:
            cluster.stdin.close()
        try:
            cluster.wait(timeout=120)
        except subprocess.TimeoutExpired:
            cluster.kill()
    for name in GOLD:
        assert_same(lake.read_table(name), single_node[name], lake.spec(name).key)
