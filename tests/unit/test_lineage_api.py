"""``POST /api/v1/lineage`` refusals: the key (either scheme), each malformed field named, the body size,
and a store that does not answer (503). PostgreSQL points at a closed port: valid events reach it and
are refused as undeliverable, bad ones are refused before."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from mdslab.api.app import create_app
from mdslab.settings import Settings
from tests.unit.test_ingest_api import KEY, _closed_port

PATH = "/api/v1/lineage"


def event(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "eventType": "START",
        "eventTime": "2026-12-06T10:00:00+00:00",
        "producer": "https://example.com/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "spark", "name": "nightly.etl"},
        "inputs": [{"namespace": "s3://raw-data-bucket", "name": "bronze/transactions"}],
    }
    return {**base, **changes}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    base = Settings()
    closed = _closed_port()
    settings = base.model_copy(
        update={
            "api": base.api.model_copy(update={"api_key": SecretStr(KEY), "max_body_bytes": 4096}),
            "kafka": base.kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{closed}"}),
            "postgres": base.postgres.model_copy(update={"port": closed}),
        }
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_the_key_is_required_and_either_scheme_is_taken(client: TestClient) -> None:
    assert client.post(PATH, json=event()).status_code == 401
    assert client.post(PATH, json=event(), headers={"X-API-Key": "wrong"}).status_code == 403
    assert client.post(PATH, json=event(), headers={"Authorization": "Bearer wrong"}).status_code == 403
    for headers in ({"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"}):
        answer = client.post(PATH, json=event(), headers=headers)  # accepted, then the store is down
        assert answer.status_code == 503 and "the event was not stored" in answer.json()["detail"], answer.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (event(job={"namespace": "spark"}), "body.job.name"),
        (event(run={"runId": "not-a-uuid"}), "body.run.runId"),
        (event(eventType="DONE"), "body.eventType"),
        (event(eventTime="yesterday"), "body.eventTime"),
        (event(inputs=[{"name": "t"}]), "body.inputs.0.namespace"),
        ({k: v for k, v in event().items() if k != "producer"}, "body.producer"),
    ],
)
def test_a_malformed_event_is_422_naming_the_field(client: TestClient, body: dict[str, Any], field: str) -> None:
    answer = client.post(PATH, json=body, headers={"X-API-Key": KEY})
    assert answer.status_code == 422, answer.text
    assert field in answer.json()["message"], answer.json()


def test_not_json_and_too_large_are_refused(client: TestClient) -> None:
    headers = {"X-API-Key": KEY, "content-type": "application/json"}
    assert client.post(PATH, content=b"{not json", headers=headers).status_code == 422
    huge = event(job={"namespace": "spark", "name": "x" * 5000})
    assert client.post(PATH, json=huge, headers={"X-API-Key": KEY}).status_code == 413


# --- the read side: /v1/catalog and /v1/lineage ------------------------------------------------------


def test_the_catalog_routes_need_the_key_and_answer_without_the_store(client: TestClient) -> None:
    assert client.get("/v1/catalog").status_code == 401
    found = client.get("/v1/catalog", params={"tag": "pii.card"}, headers={"X-API-Key": KEY})
    assert found.status_code == 200, found.text
    assert {(hit["table"], hit["column"]) for hit in found.json()} == {("silver.transactions", "card_last4")}
    listed = client.get("/v1/catalog", params={"layer": "gold"}, headers={"X-API-Key": KEY}).json()
    assert listed and {hit["layer"] for hit in listed} == {"gold"}


@pytest.mark.parametrize(
    ("path", "params", "code", "says"),
    [
        ("/v1/catalog", {"layer": "golden"}, 422, "layer"),
        ("/v1/catalog/silver.claim", {}, 404, "did you mean silver.claims"),
        ("/v1/lineage", {}, 422, "node"),
        ("/v1/lineage", {"node": "gold.daily_spend", "depth": 0}, 422, "depth"),
        ("/v1/lineage", {"node": "gold.daily_spend", "direction": "sideways"}, 422, "direction"),
        ("/v1/lineage", {"node": "gold.daily_spend", "format": "png"}, 422, "format"),
        ("/v1/lineage", {"node": "gold.daily_spend"}, 503, "PostgreSQL at 127.0.0.1:"),
        ("/v1/lineage/runs", {"limit": 0}, 422, "limit"),
        ("/v1/lineage/runs", {"job": "nightly"}, 503, "PostgreSQL at 127.0.0.1:"),
        ("/v1/lineage/runs", {"job": "a\u0000b"}, 404, "no run of job"),
    ],
)
def test_bad_read_requests_are_a_4xx_naming_the_problem(
    client: TestClient, path: str, params: dict[str, Any], code: int, says: str
) -> None:
    answer = client.get(path, params=params, headers={"X-API-Key": KEY})
    assert answer.status_code == code, answer.text
    assert says in answer.text
