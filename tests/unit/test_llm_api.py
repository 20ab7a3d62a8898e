"""Refusals of the RAG route and the LLM gateway that happen before any retrieval: API keys (both
header styles, extra gateway keys), per-key rate limits with Retry-After, unknown models, and empty or
oversized questions. The app is the real one; nothing here reaches PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from langchain_core.documents import Document
from pydantic import SecretStr

from mdslab.api.app import create_app
from mdslab.api_keys import TokenBucket
from mdslab.errors import ServiceUnavailableError
from mdslab.llm.answer import make_answerer
from mdslab.llm.embeddings import MiniLmEmbeddings
from mdslab.settings import AnswererKind, InvalidSettingError, RagSettings, Settings, load_settings

KEY, OTHER = "main-key", "team-key"


@pytest.fixture
def client() -> Iterator[TestClient]:
    base = Settings()
    settings = base.model_copy(
        update={
            "api": base.api.model_copy(update={"api_key": SecretStr(KEY)}),
            "rag": base.rag.model_copy(
                update={"gateway_keys": SecretStr(f" {OTHER} ,"), "gateway_rate_per_minute": 1, "gateway_burst": 2}
            ),
        }
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _chat(client: TestClient, headers: dict[str, str], model: str = "gpt-unknown") -> tuple[int, dict[str, object]]:
    reply = client.post(
        "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "hi"}]}, headers=headers
    )
    return reply.status_code, reply.json()


def test_the_gateway_refuses_missing_and_wrong_keys_in_openai_shape(client: TestClient) -> None:
    status, body = _chat(client, {})
    assert status == 401 and body["error"]["code"] == "missing_api_key"  # type: ignore[index]
    status, body = _chat(client, {"Authorization": "Bearer nope"})
    assert status == 401 and body["error"]["code"] == "invalid_api_key"  # type: ignore[index]
    assert client.get("/v1/models", headers={"X-API-Key": "nope"}).status_code == 401


def test_both_header_styles_and_extra_keys_are_accepted(client: TestClient) -> None:
    for headers in ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}, {"Authorization": f"Bearer {OTHER}"}):
        status, body = _chat(client, headers)
        assert status == 404, body  # past auth: the model is unknown without an upstream endpoint
        assert "MDSLAB_RAG__LLM_BASE_URL" in body["error"]["message"]  # type: ignore[index]
    models = client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert [m["id"] for m in models["data"]] == ["mdslab-rag"]


def test_each_key_has_its_own_rate_limit_with_retry_after(client: TestClient) -> None:
    main = {"Authorization": f"Bearer {KEY}"}
    assert [_chat(client, main)[0] for _ in range(2)] == [404, 404]  # the burst
    reply = client.post(
        "/v1/chat/completions", json={"model": "x", "messages": [{"role": "user", "content": "hi"}]}, headers=main
    )
    assert reply.status_code == 429
    assert reply.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(reply.headers["retry-after"]) <= 60
    assert _chat(client, {"Authorization": f"Bearer {OTHER}"})[0] == 404  # another key is not limited by it


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(per_minute=60, burst=2, clock=lambda: now[0])
    assert [bucket.take("k"), bucket.take("k")] == [0.0, 0.0]
    assert bucket.take("k") == pytest.approx(1.0)
    now[0] = 0.5
    assert bucket.take("k") == pytest.approx(0.5)
    now[0] = 1.0
    assert bucket.take("k") == 0.0


def test_a_malformed_chat_request_names_the_field(client: TestClient) -> None:
    reply = client.post(
        "/v1/chat/completions", json={"model": "mdslab-rag", "messages": []}, headers={"X-API-Key": KEY}
    )
    assert reply.status_code == 422
    assert "messages" in reply.json()["message"]


@pytest.mark.parametrize(
    ("question", "reason"),
    [("", "at least 1 character"), ("   \n ", "at least 1 character"), ("x" * 2001, "at most 2000 characters")],
)
def test_empty_or_oversized_questions_get_422_naming_the_field(client: TestClient, question: str, reason: str) -> None:
    reply = client.post("/v1/rag/query", json={"question": question}, headers={"X-API-Key": KEY})
    assert reply.status_code == 422
    assert reply.json()["message"].startswith("body.question:") and reason in reply.json()["message"]


def test_the_rag_route_needs_the_api_key(client: TestClient) -> None:
    assert client.post("/v1/rag/query", json={"question": "hi"}).status_code == 401
    assert client.post("/v1/rag/query", json={"question": "hi"}, headers={"X-API-Key": "no"}).status_code == 403


def test_the_openapi_document_lists_the_rag_and_gateway_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/rag/query", "/v1/chat/completions", "/v1/models"} <= set(paths)


def test_an_unreachable_vector_index_is_503_naming_the_fix() -> None:
    from tests.unit.test_ingest_api import _closed_port

    base = Settings()
    settings = base.model_copy(
        update={
            "api": base.api.model_copy(update={"api_key": SecretStr(KEY)}),
            "postgres": base.postgres.model_copy(update={"port": _closed_port()}),
        }
    )
    with TestClient(create_app(settings)) as client:
        reply = client.post("/v1/rag/query", json={"question": "anything?"}, headers={"X-API-Key": KEY})
        chat = client.post(
            "/v1/chat/completions",
            json={"model": "mdslab-rag", "messages": [{"role": "user", "content": "anything?"}]},
            headers={"Authorization": f"Bearer {KEY}"},
        )
    assert reply.status_code == 503 and "mdslab up" in reply.json()["detail"]
    assert reply.headers["retry-after"] == "5"
    assert chat.status_code == 503 and "mdslab up" in chat.json()["error"]["message"]


def test_the_openai_answerer_without_an_endpoint_is_refused_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Was: settings loaded, the API started, and the first question got a 500."""
    monkeypatch.setenv("MDSLAB_RAG__ANSWERER", "openai")
    with pytest.raises(InvalidSettingError, match="MDSLAB_RAG__ANSWERER=openai needs MDSLAB_RAG__LLM_BASE_URL"):
        load_settings()
    monkeypatch.setenv("MDSLAB_RAG__LLM_BASE_URL", "http://127.0.0.1:11434/v1")
    assert load_settings().rag.answerer is AnswererKind.OPENAI


def test_an_unreachable_chat_model_is_a_503_that_does_not_echo_its_url() -> None:
    from tests.unit.test_ingest_api import _closed_port

    port = _closed_port()
    rag = RagSettings(answerer=AnswererKind.OPENAI, llm_base_url=f"http://127.0.0.1:{port}/v1")
    answerer = make_answerer(rag, MiniLmEmbeddings())
    source = Document("Claims are paid within 30 days.", metadata={"source": "docs/claims.md", "kind": "document"})
    with pytest.raises(ServiceUnavailableError) as raised:
        answerer.answer("When are claims paid?", [source])
    assert "MDSLAB_RAG__LLM_BASE_URL did not answer (" in str(raised.value)
    assert "ConnectionError)" in str(raised.value)
    assert str(port) not in str(raised.value)
