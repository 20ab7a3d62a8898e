"""Property-based fuzzing of every route of the API from its own OpenAPI document (schemathesis +
Hypothesis): whatever the generated body or parameters, the API answers with a 2xx or a 4xx, never a
5xx, except a 503 a route documents (no champion model yet, an empty RAG index: this lab has neither
here). Valid events generated along the way are really published to (isolated) topics on the real
broker. Every route that needs a key refuses generated requests without the right one.

The cases are drawn per operation from ``APIOperation.as_strategy()`` inside ordinary tests, because
schemathesis's pytest fixture loader does not work with pytest 9 here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from mdslab.api.app import create_app
from mdslab.eventbus import EventPublisher
from mdslab.settings import Settings

pytestmark = pytest.mark.integration
INGEST_ROUTES = ("/v1/transactions", "/v1/claims")
ROUTES = [
    *(("POST", route) for route in INGEST_ROUTES),
    ("POST", "/v1/models/fraud/predict"),
    ("POST", "/v1/rag/query"),
    ("POST", "/v1/chat/completions"),
    ("GET", "/v1/models"),
    ("POST", "/api/v1/lineage"),
    ("GET", "/v1/catalog"),
    ("GET", "/v1/catalog/{table}"),
    ("GET", "/v1/lineage"),
    ("GET", "/v1/lineage/runs"),
    ("POST", "/v1/sql"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]
KEYED = [(method, path) for method, path in ROUTES if path.startswith(("/v1/", "/api/v1/"))]


@pytest.fixture(scope="module")
def api(services: Settings) -> Iterator[tuple[Settings, Any]]:
    from mdslab.workloads.bootstrap import ensure_resources

    fuzzed = services.model_copy(update={"kafka": services.kafka.model_copy(update={"topic_prefix": "fuzz."})})
    ensure_resources(fuzzed)
    publisher = EventPublisher(fuzzed.kafka, delivery_timeout_s=fuzzed.api.delivery_timeout_s)
    try:
        yield fuzzed, schemathesis.openapi.from_asgi("/openapi.json", create_app(fuzzed, publisher=publisher))
    finally:
        publisher.close()


def _operation(schema: Any, method: str, path: str) -> Any:
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() == method and operation.path == path:
            return operation
    raise AssertionError(f"{method} {path} is not in the OpenAPI document")


def test_every_route_of_the_openapi_document_is_fuzzed(api: tuple[Settings, Any]) -> None:
    _, schema = api
    documented = {(r.ok().method.upper(), r.ok().path) for r in schema.get_all_operations()}
    assert documented == set(ROUTES)


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_no_generated_request_makes_the_api_answer_5xx(api: tuple[Settings, Any], method: str, path: str) -> None:
    fuzzed, schema = api
    key = {"X-API-Key": fuzzed.api.api_key.get_secret_value()}
    statuses: set[int] = set()
    operation = _operation(schema, method, path)
    documented_503 = "503" in (operation.definition.raw.get("responses") or {}) and (method, path) in KEYED

    @given(case=operation.as_strategy())
    @settings(
        max_examples=80 if path in INGEST_ROUTES else 30,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: Any) -> None:
        response = case.call(headers=key)
        statuses.add(response.status_code)
        allowed = response.status_code == 503 and documented_503
        assert response.status_code < 500 or allowed, f"{method} {path}: {response.status_code} {response.text[:500]}"

    check()
    assert statuses, "no request was generated"
    if path in INGEST_ROUTES:
        assert 202 in statuses, "the schema-valid events were not accepted"


@pytest.mark.parametrize(("method", "path"), KEYED)
def test_generated_requests_without_the_right_key_are_refused(
    api: tuple[Settings, Any], method: str, path: str
) -> None:
    """Schemathesis fills the documented X-API-Key header with generated values (or leaves it out):
    each such request is a 401 (none) or 403 (wrong), never accepted."""
    _, schema = api
    statuses: set[int] = set()

    @given(case=_operation(schema, method, path).as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: Any) -> None:
        status = case.call().status_code
        statuses.add(status)
        assert status in (401, 403)

    check()
    assert statuses
