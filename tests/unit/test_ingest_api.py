"""The ingestion API's refusals: validation (422 per field), size limits (413), auth (401/403) and a
broker that does not answer (503 with Retry-After). The producer is real; it points at a port where no
broker listens, which is exactly the broker-down case, and invalid requests never reach it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from mdslab.api.app import create_app
from mdslab.services.ports import port_in_use
from mdslab.settings import Settings
from tests.conftest import valid_transaction

KEY = "test-key"
TRANSACTION = valid_transaction(event_id="7d0c6a3e-4a5b-4c2d-9e1f-0a1b2c3d4e5f")


def _closed_port() -> int:
    port = 1
    while port_in_use("127.0.0.1", port):
        port += 1
    return port


def broker_down_settings() -> Settings:
    """The test key, small limits, and Kafka on a port where nothing listens."""
    base = Settings()
    return base.model_copy(
        update={
            "api": base.api.model_copy(
                update={
                    "api_key": SecretStr(KEY),
                    "max_batch_events": 10,
                    "max_body_bytes": 4096,
                    "delivery_timeout_s": 1.0,
                }
            ),
            "kafka": base.kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{_closed_port()}"}),
        }
    )


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(broker_down_settings())) as test_client:
        yield test_client


def post(
    client: TestClient, path: str, body: Any = None, *, content: bytes | None = None, key: str | None = KEY
) -> Any:
    headers = {"X-API-Key": key} if key else {}
    if content is not None:
        return client.post(path, content=content, headers={**headers, "content-type": "application/json"})
    return client.post(path, json=body, headers=headers)


def test_missing_key_is_401_and_wrong_key_403(client: TestClient) -> None:
    assert post(client, "/v1/transactions", TRANSACTION, key=None).status_code == 401
    response = post(client, "/v1/transactions", TRANSACTION, key="wrong")
    assert response.status_code == 403
    assert "X-API-Key" in response.json()["detail"]


def test_invalid_field_is_422_naming_the_field_and_reason(client: TestClient) -> None:
    response = post(client, "/v1/transactions", TRANSACTION | {"amount": -5})
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == [
        {"loc": ["body", "amount"], "msg": "Input should be greater than 0", "type": "greater_than"}
    ]
    assert body["message"].startswith("body.amount: Input should be greater than 0")


def test_a_batch_names_each_bad_event_by_index(client: TestClient) -> None:
    events = [TRANSACTION, TRANSACTION | {"currency": "XXX"}, {k: v for k, v in TRANSACTION.items() if k != "channel"}]
    response = post(client, "/v1/transactions", events)
    assert response.status_code == 422
    locations = {tuple(error["loc"]) for error in response.json()["detail"]}
    assert locations == {("body", 1, "currency"), ("body", 2, "channel")}


def test_unknown_fields_and_cross_field_rules_are_refused(client: TestClient) -> None:
    assert post(client, "/v1/transactions", TRANSACTION | {"merchant_name": "x"}).status_code == 422
    claim = {
        "event_id": "8d0c6a3e-4a5b-4c2d-9e1f-0a1b2c3d4e5f",
        "claim_id": "CL00000001",
        "policy_id": "P0000001",
        "customer_id": "C0000001",
        "claim_type": "collision",
        "amount_claimed": 1000.0,
        "currency": "USD",
        "incident_date": "2026-10-14",
        "reported_at": "2026-10-13T23:59:00Z",
        "region": "US-Northeast",
        "status": "open",
        "adjuster_notes": "Rear-ended at a light.",
    }
    response = post(client, "/v1/claims", claim)
    assert response.status_code == 422
    assert "before incident_date" in response.json()["message"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"{not json", "not valid JSON"), (b"[]", "no events"), (b"42", "valid dictionary")],
)
def test_malformed_bodies_are_422_not_500(client: TestClient, content: bytes, expected: str) -> None:
    response = post(client, "/v1/transactions", content=content)
    assert response.status_code == 422
    assert expected in response.json()["message"]


def test_oversized_body_and_batch_are_413(client: TestClient) -> None:
    response = post(client, "/v1/transactions", content=b"[" + b" " * 5000 + b"]")
    assert response.status_code == 413
    assert "4096" in response.json()["detail"]
    response = post(client, "/v1/transactions", [TRANSACTION] * 11)
    assert response.status_code == 413
    assert "at most 10" in response.json()["detail"]


def test_broker_down_is_503_with_retry_after(client: TestClient) -> None:
    response = post(client, "/v1/transactions", TRANSACTION)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "retry" in response.json()["detail"]
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").json() == {"status": "ok"}


def test_metrics_count_requests_and_rejections(client: TestClient) -> None:
    post(client, "/v1/transactions", TRANSACTION | {"amount": "a lot"})
    text = client.get("/metrics").text
    assert 'mdslab_api_requests_total{method="POST",route="/v1/transactions",status="422"}' in text
    assert 'mdslab_ingest_events_total{event_type="transactions",outcome="rejected"}' in text
    assert "mdslab_api_request_duration_seconds_bucket" in text


def test_openapi_documents_the_contract_bodies(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/transactions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["oneOf"][0] == {"$ref": "#/components/schemas/Transaction"}
    assert body["oneOf"][1]["maxItems"] == 10
    assert "amount" in spec["components"]["schemas"]["Transaction"]["properties"]
    assert client.get("/docs").status_code == 200
