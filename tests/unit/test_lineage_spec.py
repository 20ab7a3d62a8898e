"""The spec check the integration tests apply to every stored event (tests/lineage_asserts.py) accepts what
the lab's builders produce and rejects each kind of defect, naming where it is."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from openlineage.client.event_v2 import OutputDataset, RunState
from openlineage.client.serde import Serde

from mdslab.settings import LakeSettings
from mdslab.workloads.lake import build_registry
from mdslab.workloads.lineage import naming
from mdslab.workloads.lineage.events import JobRun, RunRef, column_lineage, error_facet, table_facets
from mdslab.workloads.lineage.job_runs import delta_input, job_facets, output_statistics
from tests.lineage_asserts import assert_conforms_to_client_spec


def _failed_step_event() -> dict[str, Any]:
    """A FAIL of a gold step under an orchestrator's run, with every facet kind the lab writes."""
    registry = build_registry()
    lake = LakeSettings()
    source, target = registry.get("silver.transactions"), registry.get("gold.daily_spend")
    source_dataset = naming.delta_table(source, lake)
    namespace, name = naming.delta_table(target, lake)
    facets = table_facets(target, 7, tags={"total_amount": {"pii.card": "silver.transactions.amount"}})
    facets["columnLineage"] = column_lineage({"total_amount": [(source_dataset, "amount", "DIRECT", "AGGREGATION")]})
    parent = RunRef("airflow", "mdslab_medallion.silver_gold", "0190c3a4-7d6e-7c7e-8f00-6f1d2a3b4c5d")
    run = JobRun("mdslab", "pipeline.gold.daily_spend", parent)
    try:
        raise ValueError("Delta commit conflict on gold.daily_spend")
    except ValueError as exc:
        error = exc
    event = run.event(
        RunState.FAIL,
        inputs=[delta_input(source, lake, 3)],
        outputs=[OutputDataset(namespace, name, facets=facets, outputFacets=output_statistics(120))],  # type: ignore[arg-type]
        job_facets=job_facets("gold step", "BATCH"),
        run_facets={"errorMessage": error_facet(error)},
    )
    return Serde.to_dict(event)


def test_an_event_built_by_the_lab_conforms_and_rebuilds_with_every_facet_typed() -> None:
    event = _failed_step_event()
    built = assert_conforms_to_client_spec(event)
    assert built.eventType is RunState.FAIL
    assert type(built.run.facets["errorMessage"]).__name__ == "ErrorMessageRunFacet"
    assert type(built.run.facets["parent"]).__name__ == "ParentRunFacet"
    output = built.outputs[0]
    assert type(output.facets["columnLineage"]).__name__ == "ColumnLineageDatasetFacet"
    assert output.outputFacets["outputStatistics"].rowCount == 120
    assert Serde.to_dict(built) == event  # nothing dropped or changed on the way


def _drop_job_name(e: dict[str, Any]) -> None:
    del e["job"]["name"]


def _unknown_state(e: dict[str, Any]) -> None:
    e["eventType"] = "DONE"


def _run_id_not_a_uuid(e: dict[str, Any]) -> None:
    e["run"]["runId"] = "run-42"


def _date_without_time(e: dict[str, Any]) -> None:
    e["eventTime"] = "2026-12-07"


def _dataset_facet_among_run_facets(e: dict[str, Any]) -> None:
    e["run"]["facets"]["schema"] = e["outputs"][0]["facets"]["schema"]


def _property_the_spec_lacks(e: dict[str, Any]) -> None:
    e["run"]["started"] = "yesterday"


def _row_count_as_text(e: dict[str, Any]) -> None:
    e["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] = "120"


def _facet_without_producer(e: dict[str, Any]) -> None:
    del e["job"]["facets"]["jobType"]["_producer"]


def _lineage_input_without_field(e: dict[str, Any]) -> None:
    del e["outputs"][0]["facets"]["columnLineage"]["fields"]["total_amount"]["inputFields"][0]["field"]


def _other_schema_version(e: dict[str, Any]) -> None:
    e["schemaURL"] = "https://openlineage.io/spec/1-0-5/OpenLineage.json#/$defs/RunEvent"


@pytest.mark.parametrize(
    ("plant", "named"),
    [
        (_drop_job_name, "event.job: the required property name is missing"),
        (_unknown_state, "event.eventType: 'DONE' is not one of EventType"),
        (_run_id_not_a_uuid, "badly formed hexadecimal UUID"),
        (_date_without_time, "has to contain time"),
        (_dataset_facet_among_run_facets, "event.run.facets.schema: a SchemaDatasetFacet where a RunFacet belongs"),
        (_property_the_spec_lacks, "event.run: properties the spec does not define: ['started']"),
        (_row_count_as_text, "rowCount: '120' is not of type int"),
        (_facet_without_producer, "event.job.facets.jobType: no _producer"),
        (_lineage_input_without_field, "inputFields[0]: the required property field is missing"),
        (_other_schema_version, "event: schemaURL"),
    ],
)
def test_each_kind_of_defect_fails_the_check_and_says_where(
    plant: Callable[[dict[str, Any]], None], named: str
) -> None:
    event = copy.deepcopy(_failed_step_event())
    plant(event)
    with pytest.raises((AssertionError, ValueError), match=named.replace("[", r"\[").replace("(", r"\(")):
        assert_conforms_to_client_spec(event)
