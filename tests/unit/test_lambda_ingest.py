"""The ingest Lambda's refusals, each compared with the API's answer to the same request: a client must
not be able to tell them apart. As in test_ingest_api.py the producer is real and points at a port where
no broker listens (the broker-down case); invalid requests never reach it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mdslab.api.app import create_app
from mdslab.api.lambda_ingest import LambdaIngest
from mdslab.eventbus import EventPublisher
from mdslab.settings import Settings
from tests.conftest import valid_transaction
from tests.unit.test_ingest_api import KEY, broker_down_settings

TRANSACTION = valid_transaction(event_id="7d0c6a3e-4a5b-4c2d-9e1f-0a1b2c3d4e5f")


@pytest.fixture(scope="module")
def settings() -> Settings:
    return broker_down_settings()


@pytest.fixture(scope="module")
def handler(settings: Settings) -> Iterator[LambdaIngest]:
    publisher = EventPublisher(settings.kafka, delivery_timeout_s=settings.api.delivery_timeout_s)
    try:
        yield LambdaIngest(settings, publisher)
    finally:
        publisher.close(timeout_s=1)


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def rest_event(path: str, body: str, *, key: str | None = KEY, method: str = "POST", **extra: Any) -> dict[str, Any]:
    """An API Gateway REST API (payload 1.0) proxy event."""
    headers = {"X-Api-Key": key} if key else {}
    return {"httpMethod": method, "path": path, "headers": headers, "body": body, "isBase64Encoded": False} | extra


def both(handler: LambdaIngest, api: TestClient, path: str, body: str, *, key: str | None = KEY) -> tuple[Any, Any]:
    """(status, JSON body) from the Lambda and from the API for the same request."""
    answer = handler(rest_event(path, body, key=key))
    headers = {"X-API-Key": key} if key else {}
    response = api.post(path, content=body.encode(), headers={**headers, "content-type": "application/json"})
    return (answer["statusCode"], json.loads(answer["body"])), (response.status_code, response.json())


@pytest.mark.parametrize(
    ("case", "body", "key", "status"),
    [
        ("no key", json.dumps(TRANSACTION), None, 401),
        ("wrong key", json.dumps(TRANSACTION), "not-the-key", 403),
        ("not JSON", "{not json", KEY, 422),
        ("a field out of contract", json.dumps(valid_transaction(amount=-5, currency="usd")), KEY, 422),
        ("a bad event in a batch", json.dumps([TRANSACTION, valid_transaction(card_last4="12")]), KEY, 422),
        ("an empty list", "[]", KEY, 422),
        ("too many events", json.dumps([valid_transaction(amount=1)] * 11), KEY, 413),
    ],
)
def test_a_refusal_is_what_the_api_answers(
    handler: LambdaIngest, api: TestClient, case: str, body: str, key: str | None, status: int
) -> None:
    from_lambda, from_api = both(handler, api, "/v1/transactions", body, key=key)
    assert from_lambda[0] == status, (case, from_lambda)
    assert from_lambda == from_api, case


def test_an_invalid_field_is_named_with_its_reason(handler: LambdaIngest) -> None:
    answer = handler(rest_event("/v1/transactions", json.dumps(valid_transaction(amount="TBD"))))
    body = json.loads(answer["body"])
    assert answer["statusCode"] == 422 and body["detail"][0]["loc"] == ["body", "amount"]
    assert body["message"].startswith("body.amount: ") and body["message"].endswith("nothing was accepted")


def test_a_body_over_the_limit_is_413_before_it_is_parsed(handler: LambdaIngest) -> None:
    answer = handler(rest_event("/v1/transactions", " " * 5000))
    assert answer["statusCode"] == 413 and "at most 4,096" in json.loads(answer["body"])["detail"]


def test_wrong_route_method_and_encoding_are_named(handler: LambdaIngest) -> None:
    unknown = handler(rest_event("/v1/transaction", "{}"))
    assert unknown["statusCode"] == 404
    assert json.loads(unknown["body"])["detail"] == "no route /v1/transaction: POST /v1/transactions or /v1/claims"
    get = handler(rest_event("/v1/claims", "", method="GET"))
    assert get["statusCode"] == 405 and get["headers"]["Allow"] == "POST"
    garbled = handler(rest_event("/v1/transactions", "%%%not base64", isBase64Encoded=True))
    assert garbled["statusCode"] == 400 and "base64" in json.loads(garbled["body"])["detail"]


def test_broker_down_is_503_with_retry_after_like_the_api(handler: LambdaIngest, api: TestClient) -> None:
    body = json.dumps(valid_transaction())
    from_lambda, from_api = both(handler, api, "/v1/transactions", body)
    assert from_lambda[0] == from_api[0] == 503
    assert "nothing from this request may be assumed stored: retry it" in from_lambda[1]["detail"]
    answer = handler(rest_event("/v1/transactions", body))
    assert answer["headers"]["Retry-After"] == str(handler.settings.api.retry_after_s)


def test_an_http_api_event_with_a_named_stage_and_a_base64_body_is_read_too(handler: LambdaIngest) -> None:
    """Payload 2.0 (an HTTP API): method and path under requestContext.http, the stage in the path."""
    event = {
        "version": "2.0",
        "rawPath": "/live/v1/transactions",
        "headers": {"x-api-key": KEY},
        "requestContext": {"stage": "live", "http": {"method": "POST", "path": "/live/v1/transactions"}},
        "body": base64.b64encode(json.dumps(valid_transaction(amount=-1)).encode()).decode(),
        "isBase64Encoded": True,
    }
    answer = handler(event)
    assert answer["statusCode"] == 422 and json.loads(answer["body"])["detail"][0]["loc"] == ["body", "amount"]
