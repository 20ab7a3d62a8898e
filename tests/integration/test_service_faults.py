"""Object storage and PostgreSQL killed (kill -9) under work and brought back with `mdslab up`, as a person
would: the stream consumer loses and duplicates nothing, and the commands and the API say what is down
in one line (a 503 in the API) and work again without a restart of their own.

The module runs its own embedded stack (state dir, ports) so that killing its servers never disturbs the
run's shared services."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from mdslab.eventbus import EventPublisher
from mdslab.services.layout import EmbeddedLayout
from mdslab.services.supervisor import Supervisor
from mdslab.settings import Settings
from mdslab.workloads.lineage.delivery import lineage_emitter
from mdslab.workloads.lineage.store import read_events
from tests.conftest import _free_base, fresh_lake, own_topics, valid_transaction

pytestmark = pytest.mark.integration
MDSLAB = str(Path(sys.executable).parent / "mdslab")


class Stack:
    """An embedded stack of the test's own; kill -9 one server, bring it back the way a person does."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.supervisor = Supervisor(EmbeddedLayout.from_settings(settings))

    def env(self, settings: Settings | None = None) -> dict[str, str]:
        return {**os.environ, **(settings or self.settings).environment(), "COLUMNS": "400"}

    def kill(self, service: str) -> None:
        pid = self.supervisor.info(service).pid
        assert pid > 0, f"{service} is not running"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self.supervisor.info(service).state == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.05)

    def up(self) -> subprocess.CompletedProcess[str]:
        up = subprocess.run([MDSLAB, "up"], env=self.env(), capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        return up


@pytest.fixture(scope="module")
def stack(services: Settings) -> Iterator[Stack]:
    from mdslab.services import embedded
    from mdslab.workloads.bootstrap import ensure_platform

    base = _free_base()
    state_dir = Path(tempfile.mkdtemp(prefix="mdslab-test-faults-"))
    settings = services.model_copy(
        update={
            "state_dir": state_dir,
            "embedded": services.embedded.model_copy(update={"port_base": base}),
            "s3": services.s3.model_copy(update={"endpoint_url": f"http://127.0.0.1:{base + 10}"}),
            "kafka": services.kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{base + 11}"}),
            "postgres": services.postgres.model_copy(update={"port": base + 12}),
            "mongo": services.mongo.model_copy(update={"url": f"mongodb://127.0.0.1:{base + 14}"}),
        }
    )
    try:
        ensure_platform(settings, on_step=lambda _msg: None)
        yield Stack(settings)
    finally:
        embedded.down(settings)
        shutil.rmtree(state_dir, ignore_errors=True)


def _publish(settings: Settings, count: int) -> list[str]:
    from mdslab.workloads.ingestion.events import TRANSACTIONS, Topics

    events = [valid_transaction(customer_id=f"C{i % 40:07d}") for i in range(count)]
    publisher = EventPublisher(settings.kafka)
    try:
        topic = Topics(settings.kafka.topic_prefix).of(TRANSACTIONS)
        for start in range(0, count, 500):
            chunk = events[start : start + 500]
            publisher.publish_blocking(
                topic, [(e["customer_id"].encode(), orjson.dumps(e)) for e in chunk], TRANSACTIONS.headers
            )
    finally:
        publisher.close()
    return [e["event_id"] for e in events]


def test_object_storage_killed_while_the_consumer_commits_loses_and_duplicates_nothing(stack: Stack) -> None:
    from mdslab.workloads.ingestion.consumer import StreamConsumer
    from mdslab.workloads.lake import lakehouse

    settings = own_topics(fresh_lake(stack.settings, "s3kill"), batch_max_messages=300, batch_max_seconds=0.2)
    sent = _publish(settings, 12_000)
    lake = lakehouse(settings)
    outcome: dict[str, Any] = {}

    def consume() -> None:
        try:
            outcome["report"] = StreamConsumer(settings, lake).run(until_caught_up=True)
        except Exception as exc:  # what the consumer does while S3 is gone is what the test looks at
            outcome["error"] = exc

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not lake.version("bronze.transactions"):  # the first batch committed
        time.sleep(0.05)
    assert worker.is_alive(), f"the consumer finished before the kill: {outcome}"
    stack.kill("s3")
    killed_at = time.monotonic()
    time.sleep(5)
    stack.up()
    back_at = time.monotonic()
    worker.join(600)
    assert not worker.is_alive(), "the consumer hung after S3 came back"
    print(f"\nS3 down {back_at - killed_at:.1f} s; consumer: {outcome}")
    if "error" in outcome:  # it stopped: then a re-run resumes from what bronze committed
        StreamConsumer(settings, lake).run(until_caught_up=True)
    stored = Counter(lake.read_table("bronze.transactions", columns=["event_id"]).column(0).to_pylist())
    assert [i for i in sent if stored[i] == 0] == []  # nothing lost
    assert [i for i, n in stored.items() if n > 1] == []  # nothing twice


RUNBOOK = """# Runbook

## Rotating the API key

Delete secrets.env in the state directory and run `mdslab up`: a new key is generated.
"""


def test_postgres_killed_under_rag_queries_is_a_503_and_the_api_answers_again_once_it_is_back(
    stack: Stack, tmp_path: Path
) -> None:
    import httpx

    from mdslab.api.app import create_app
    from mdslab.api.server import background_server
    from mdslab.llm.operations import index_lake
    from mdslab.workloads.lake import lakehouse

    settings = fresh_lake(stack.settings, "pgrag")
    docs = tmp_path / "handbook"
    docs.mkdir()
    (docs / "runbook.md").write_text(RUNBOOK)
    index_lake(settings, lakehouse(settings), docs=[docs])
    headers = {"X-API-Key": settings.api.api_key.get_secret_value()}
    question = {"question": "How do I rotate the API key?", "kinds": ["document"]}
    with background_server(create_app(settings)) as url:

        def ask() -> httpx.Response:
            return httpx.post(f"{url}/v1/rag/query", json=question, headers=headers, timeout=60)

        before = ask()
        assert before.status_code == 200, before.text
        stack.kill("postgres")
        down = [ask() for _ in range(3)]
        stack.up()
        back = ask()  # the same API process: no restart
    for reply in down:
        assert reply.status_code == 503, reply.text
        assert "PostgreSQL" in reply.text and reply.headers.get("Retry-After"), reply.text
    assert back.status_code == 200, back.text
    assert back.json()["citations"][0]["file"] == "handbook/runbook.md"


def test_postgres_killed_during_a_pipeline_run_costs_only_its_run_log(stack: Stack, spark_provider: Any) -> None:
    """Past the reference step a run needs PostgreSQL only for its run log (`ops.step_runs`) and its
    lineage store, which must never fail a pipeline: the run completes and publishes, and says in a
    warning per step what it could not record. Before, its end raised the lake lock's release on the
    dead connection: a traceback. Its lineage events wait in the spool and, once PostgreSQL is back,
    each arrives exactly once."""
    from tests.integration.test_pipeline_faults import BUILT, _assert_equals_a_clean_run, _built_lab, _pipeline_run

    settings, lake = _built_lab(stack.settings, spark_provider, "pgkill", seed=71)
    before = {name: lake.version(name) for name in BUILT}
    run = _pipeline_run(settings)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and run.poll() is None:
        if any(lake.version(name) != version for name, version in before.items()):
            break
        time.sleep(0.05)
    assert run.poll() is None, f"the run ended before the kill: {run.communicate()[0]}"
    stack.kill("postgres")
    output = run.communicate(timeout=300)[0]
    assert run.returncode == 0 and "Traceback" not in output, output
    assert "published (quality gate passed)" in output, output
    warnings = [line for line in output.splitlines() if "WARNING" in line]
    kept = [line for line in warnings if "lineage: events cannot be delivered" in line]
    assert warnings and all("could not record the run of step" in line for line in set(warnings) - set(kept)), output
    assert kept and all("PostgreSQL at 127.0.0.1:" in line for line in warnings), output
    stack.up()
    assert lineage_emitter(settings).flush().waiting == 0
    runs: dict[str, list[str]] = {}
    for event in read_events(settings.postgres):
        runs.setdefault(event["run"]["runId"], []).append(event["eventType"])
    assert runs and all(states in (["START", "COMPLETE"], ["START", "FAIL"]) for states in runs.values()), runs
    rerun = _pipeline_run(settings)
    rerun_output = rerun.communicate(timeout=600)[0]
    assert rerun.returncode == 0 and "nothing new to publish" in rerun_output, rerun_output
    _assert_equals_a_clean_run(settings, lake, spark_provider)
