"""The request guard and the gateway's caps: keys checked before any body is read, bodies capped before
routing (declared or streamed), per-key budgets on RAG queries, only the served models forwarded, and
no upstream address in errors. The app is the real one; nothing here reaches a service."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from mdslab.api.app import create_app
from mdslab.api_keys import ApiKeys
from mdslab.llm.gateway import MAX_COMPLETION_TOKENS, MAX_MESSAGES
from mdslab.settings import ApiSettings, RagSettings, Settings
from tests.unit.test_ingest_api import _closed_port

KEY = "the-key"
ROUTES = ["/v1/transactions", "/v1/claims", "/v1/models/fraud/predict", "/v1/rag/query", "/v1/chat/completions"]


def _settings(body_limit: int = 4096, **rag: object) -> Settings:
    base = Settings()
    return base.model_copy(
        update={
            "api": base.api.model_copy(update={"api_key": SecretStr(KEY), "max_query_body_bytes": body_limit}),
            "postgres": base.postgres.model_copy(update={"port": _closed_port()}),
            "rag": base.rag.model_copy(update=rag),
        }
    )


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(_settings(query_rate_per_minute=1, query_burst=2))) as test_client:
        yield test_client


@pytest.mark.parametrize("path", ROUTES)
def test_no_body_is_parsed_before_the_key(client: TestClient, path: str) -> None:
    """Was: a request without a key got 422 for a malformed body, i.e. the body was read and parsed first."""
    reply = client.post(path, content=b"{not json", headers={"content-type": "application/json"})
    assert reply.status_code == 401, reply.text
    wrong = client.post(path, content=b"{not json", headers={"X-API-Key": "guess", "Authorization": "Bearer guess"})
    assert wrong.status_code in (401, 403), wrong.text


@pytest.mark.parametrize("path", ["/v1/models/fraud/predict", "/v1/rag/query", "/v1/chat/completions"])
def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(client: TestClient, path: str) -> None:
    headers = {"X-API-Key": KEY, "Authorization": f"Bearer {KEY}", "content-type": "application/json"}
    reply = client.post(path, content=b"[" + b"1," * 5000 + b"1]", headers=headers)
    assert reply.status_code == 413, reply.text
    assert "exceeds the limit of 4096 bytes" in reply.text


def test_a_streamed_body_without_a_length_is_cut_off_at_the_limit(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(100):
            yield b"x" * 100
        yield b'"}'

    reply = client.post("/v1/rag/query", content=chunks(), headers={"X-API-Key": KEY})
    assert reply.status_code == 413, reply.text
    assert "body exceeds the limit of 4096 bytes for /v1/rag/query" in reply.text


def test_rag_queries_have_a_budget_per_key(client: TestClient) -> None:
    replies = [client.post("/v1/rag/query", json={"question": "why?"}, headers={"X-API-Key": KEY}) for _ in range(3)]
    assert [r.status_code for r in replies[:2]] == [503, 503]  # PostgreSQL is down: the budget still counts
    assert replies[2].status_code == 429 and int(replies[2].headers["retry-after"]) >= 1
    assert "rate limit of this API key reached (1/min, burst 2)" in replies[2].json()["detail"]


def test_keys_are_compared_whole_and_gateway_keys_only_open_the_gateway() -> None:
    keys = ApiKeys(ApiSettings(api_key=SecretStr(KEY)), RagSettings(gateway_keys=SecretStr("team-a, team-b")))
    assert keys.accepts(KEY) and keys.accepts(KEY, gateway=True)
    assert keys.accepts("team-b", gateway=True) and not keys.accepts("team-b")
    assert not keys.accepts(KEY[:-1]) and not keys.accepts(KEY + "x") and not keys.accepts("")
    nobody = ApiKeys(ApiSettings(), RagSettings())
    assert not nobody.accepts("") and not nobody.accepts("", gateway=True)  # no key set: nothing is accepted


def _chat(client: TestClient, **body: object) -> tuple[int, dict[str, object]]:
    reply = client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"})
    return reply.status_code, reply.json()


def test_the_gateway_forwards_only_the_configured_upstream_model_and_caps_requests() -> None:
    port = _closed_port()
    settings = _settings(
        1024 * 1024, llm_base_url=f"http://127.0.0.1:{port}/v1", llm_model="served-model", answerer="openai"
    )
    hello = [{"role": "user", "content": "hi"}]
    with TestClient(create_app(settings)) as client:
        code, body = _chat(client, model="gpt-expensive", messages=hello)
        assert code == 404 and "models mdslab-rag, served-model" in str(body)
        code, body = _chat(client, model="served-model", messages=hello, max_tokens=MAX_COMPLETION_TOKENS + 1)
        assert code == 422 and "max_tokens" in str(body)
        code, body = _chat(client, model="served-model", messages=hello * (MAX_MESSAGES + 1))
        assert code == 422 and "messages" in str(body)
        code, body = _chat(client, model="served-model", messages=[{"role": "user", "content": "x" * 3000}] * 11)
        assert code == 422 and "over the gateway's 32,000" in str(body)
        code, body = _chat(client, model="served-model", messages=hello, logit_bias={"1": 100})  # dropped, not sent
        assert code == 502
        assert body["error"]["message"] == "the upstream endpoint failed (ConnectError)"  # type: ignore[index]
        assert str(port) not in str(body)
        listed = client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).json()
        assert [m["id"] for m in listed["data"]] == ["mdslab-rag", "served-model"]
