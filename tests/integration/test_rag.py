"""The AI/LLM deep dive on real services: a lake built by the Spark pipeline from simulated claims,
documents on disk, MiniLM embeddings in pgvector (HNSW), the LangChain chain, the API's RAG route and
the OpenAI-compatible gateway driven by LangChain's own OpenAI client, and the evaluation in MLflow."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from mdslab.api.app import create_app
from mdslab.api.server import background_server, serving_app
from mdslab.lakehouse import Lakehouse
from mdslab.llm.chain import RagChain, build_chain
from mdslab.llm.chunking import chunk_documents
from mdslab.llm.deep_dive import RAG_INPUT_STEPS, run_llm
from mdslab.llm.embeddings import MiniLmEmbeddings
from mdslab.llm.folder_documents import file_documents, unwrap
from mdslab.llm.freshness import indexed_table_versions, stale_sources
from mdslab.llm.indexer import IndexReport
from mdslab.llm.lake_documents import CLAIM_COLUMNS, CLAIMS_TABLE, claim_document
from mdslab.llm.operations import corpus, evaluate_index, index_lake
from mdslab.llm.questions import build_questions
from mdslab.llm.store import RetrievalFilter
from mdslab.settings import Settings
from mdslab.tracking import configure
from mdslab.workloads.file_drop_feed import drop_batch
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.lineage import naming
from mdslab.workloads.lineage.store import read_events
from mdslab.workloads.pipeline.runner import run_pipeline
from mdslab.workloads.simulator import SimulationConfig, simulate
from tests.conftest import fresh_lake

pytestmark = pytest.mark.integration
ROWS = 10_000
RUNBOOK = """# Runbook

## Restarting the stream consumer

Send SIGTERM to `mdslab stream`: it commits the micro-batch in hand to bronze, together with the next
Kafka offsets, and exits. Starting it again resumes from the offsets stored in the bronze table.

## Rotating the API key

Delete secrets.env in the state directory and run `mdslab up`: a new key is generated.
"""
GLOSSARY = """# Glossary

## Medallion layers

Bronze keeps events as they arrived, silver holds typed and deduplicated rows, gold holds marts.
"""


@dataclass
class Indexed:
    settings: Settings
    lake: Lakehouse
    docs: Path
    first: IndexReport
    chain: RagChain


@pytest.fixture(scope="module")
def indexed(services: Settings, spark_provider: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    base = fresh_lake(services, "rag")
    tag = base.postgres.database
    settings = base.model_copy(update={"ml": base.ml.model_copy(update={"artifact_bucket": f"{tag}-mlflow"})})
    lake = lakehouse(settings)
    drop_batch(settings, lake, simulate(SimulationConfig(transactions=ROWS, seed=23)))
    run_pipeline(settings, spark=spark_provider, steps=RAG_INPUT_STEPS)
    docs = tmp_path_factory.mktemp("rag") / "handbook"
    docs.mkdir()
    (docs / "runbook.md").write_text(RUNBOOK)
    (docs / "glossary.md").write_text(GLOSSARY)
    embeddings = MiniLmEmbeddings(threads=2)
    first = index_lake(settings, lake, docs=[docs], embeddings=embeddings)
    chain = build_chain(settings, embeddings=embeddings)
    yield Indexed(settings, lake, docs, first, chain)
    chain.store.close()


def _claim_rows(lake: Lakehouse) -> dict[str, dict[str, Any]]:
    rows = lake.read_table(CLAIMS_TABLE).to_pylist()
    return {row["claim_id"]: row for row in rows}


def test_the_first_index_embeds_every_chunk_of_tables_and_files(indexed: Indexed) -> None:
    report = indexed.first
    claims = indexed.lake.row_count(CLAIMS_TABLE)
    assert claims > 100
    assert report.embedded == report.chunks == report.total_chunks
    assert report.version == 1 and report.removed == 0
    kinds = {d.kind for d in corpus(indexed.lake, [indexed.docs])}
    assert kinds == {"claim", "customer", "merchant", "table", "document"}
    # the indexer's lineage run: the tables at their published versions and the folder -> the index
    (run,) = [
        e for e in read_events(indexed.settings.postgres, job="mdslab.rag.index") if e["eventType"] == "COMPLETE"
    ][:1]
    read = {d["name"]: d.get("facets", {}).get("version", {}).get("datasetVersion") for d in run["inputs"]}
    claims = naming.lake_table(indexed.lake, CLAIMS_TABLE)[1]
    assert read[claims] == str(indexed.lake.current_version(CLAIMS_TABLE))
    assert any(name.endswith("runbook.md") for name in read)
    (index,) = run["outputs"]
    assert index["name"].endswith(".chunks") and index["facets"]["version"]["datasetVersion"] == "1"


def test_retrieval_finds_the_planted_claim_facts_and_the_answer_states_them(indexed: Indexed) -> None:
    documents = corpus(indexed.lake)
    questions = [
        q
        for q in build_questions(documents, per_kind=5)
        if q.category.startswith("claim_") and "semantic" not in q.category
    ]
    assert len(questions) >= 15
    found = contained = 0
    for question in questions:
        answer = indexed.chain.ask(question.text, k=5)
        top = answer.retrieved[0].metadata
        found += f"{top['table']}:{top['row_key']}" in question.relevant
        contained += question.contained_in(answer.answer)
    assert found == len(questions)  # the key in the question pins its row first
    assert contained >= 0.8 * len(questions)


def test_citations_point_at_real_rows_of_the_cited_version(indexed: Indexed) -> None:
    rows = _claim_rows(indexed.lake)
    version = indexed.lake.version(CLAIMS_TABLE)
    claim_id = sorted(rows)[len(rows) // 2]
    answer = indexed.chain.ask(f"What happened in claim {claim_id} and what did the adjuster decide?")
    assert answer.citations
    for citation in answer.citations:
        assert citation.table == CLAIMS_TABLE and citation.table_version == version
        table = indexed.lake.read_table(CLAIMS_TABLE, version=citation.table_version, columns=CLAIM_COLUMNS)
        cited = next(r for r in table.to_pylist() if r["claim_id"] == citation.row_key)
        assert citation.snippet in claim_document(cited, version=version).text  # the row's text, word for word
        assert citation.snippet in answer.answer
    assert answer.citations[0].row_key == claim_id


def test_a_question_about_the_documents_cites_the_file_and_heading(indexed: Indexed) -> None:
    answer = indexed.chain.ask("How do I restart the stream consumer without losing the batch in hand?")
    first = answer.citations[0]
    assert first.file == "handbook/runbook.md"
    assert first.heading == "Runbook > Restarting the stream consumer"
    assert first.snippet in unwrap((indexed.docs / "runbook.md").read_text())
    assert "SIGTERM" in answer.answer


def test_metadata_filters_restrict_retrieval(indexed: Indexed) -> None:
    where = RetrievalFilter(table=CLAIMS_TABLE, date_from=date(2026, 10, 10), date_to=date(2026, 10, 20))
    answer = indexed.chain.ask("water damage in the kitchen", k=8, where=where)
    assert len(answer.retrieved) == 8
    for document in answer.retrieved:
        m = document.metadata
        assert m["table"] == CLAIMS_TABLE and "2026-10-10" <= m["event_date"] <= "2026-10-20"
    docs_only = indexed.chain.ask("water damage in the kitchen", where=RetrievalFilter(kinds=("document",)))
    assert {d.metadata["kind"] for d in docs_only.retrieved} == {"document"}


def test_reindexing_embeds_only_changed_chunks_and_removes_vanished_rows_and_sections(indexed: Indexed) -> None:
    settings, lake, docs = indexed.settings, indexed.lake, indexed.docs
    again = index_lake(settings, lake, docs=[docs])
    assert (again.embedded, again.relabelled, again.removed, again.version) == (0, 0, 0, None)

    before = {c.chunk_id: c.content_hash for c in chunk_documents(corpus(lake, [docs]), max_chars=800, overlap=100)}
    rows = _claim_rows(lake)
    gone = sorted(rows)[:3]
    lake.delta(CLAIMS_TABLE).delete(f"claim_id IN ({', '.join(repr(c) for c in gone)})")
    unpublished = {c.chunk_id: c.content_hash for c in chunk_documents(corpus(lake, []), max_chars=800, overlap=100)}
    assert {f"silver.claims:{c}#0" for c in gone} <= set(unpublished)  # readers see the published version only
    lake.publish({CLAIMS_TABLE: lake.version(CLAIMS_TABLE) or 0}, run_id="test", note="three claims withdrawn")
    stale = stale_sources(indexed_table_versions(settings) or {}, lake)  # what `mdslab status` shows
    assert [(s.table, s.published) for s in stale] == [(CLAIMS_TABLE, lake.version(CLAIMS_TABLE))]
    assert stale[0].indexed < stale[0].published and "`mdslab rag index` catches up" in stale[0].line()
    (docs / "runbook.md").write_text(RUNBOOK.replace("a new key is generated", "a fresh key is generated"))
    (docs / "glossary.md").unlink()
    after = {c.chunk_id: c.content_hash for c in chunk_documents(corpus(lake, [docs]), max_chars=800, overlap=100)}

    report = index_lake(settings, lake, docs=[docs])
    changed = {chunk_id for chunk_id, digest in after.items() if before.get(chunk_id) != digest}
    vanished = set(before) - set(after)
    assert report.embedded == len(changed) > 0  # the edited section and the summaries of the claims' customers
    assert report.removed == len(vanished) >= 4  # three claims and the deleted file's section
    assert {f"silver.claims:{c}#0" for c in gone} <= vanished
    assert report.relabelled > 100  # every other claim now cites the table's new version, without a new embedding
    assert report.version == 2 and report.total_chunks == len(after)
    assert stale_sources(indexed_table_versions(settings) or {}, lake) == []
    assert indexed.chain.store.version().version == 2  # type: ignore[union-attr]
    with indexed.chain.store.connection() as conn:
        versions = dict(
            conn.execute(
                f"SELECT row_key, table_version FROM {settings.rag.schema_name}.chunks WHERE kind = 'claim'"
            ).fetchall()
        )
    assert set(versions.values()) == {lake.version(CLAIMS_TABLE)}
    assert not set(gone) & set(versions)


def test_the_rag_route_answers_with_citations_and_timings(indexed: Indexed) -> None:
    settings = indexed.settings
    key = settings.api.api_key.get_secret_value()
    with background_server(create_app(settings)) as url:
        reply = httpx.post(
            f"{url}/v1/rag/query",
            json={"question": "What happens when the stream consumer gets SIGTERM?", "kinds": ["document"]},
            headers={"X-API-Key": key},
            timeout=60,
        )
        refused = httpx.post(f"{url}/v1/rag/query", json={"question": " "}, headers={"X-API-Key": key}, timeout=10)
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["citations"][0]["file"] == "handbook/runbook.md"
    assert body["index_version"] >= 1 and body["answerer"] == "extractive"
    timings = body["timings_ms"]
    assert timings["retrieve"] > 0 and timings["answer"] > 0
    assert timings["total"] == pytest.approx(timings["retrieve"] + timings["answer"], abs=0.05)
    assert refused.status_code == 422 and "question" in refused.json()["message"]
    assert 'mdslab_rag_stage_duration_seconds_count{answerer="extractive",stage="total"} 1.0' in metrics


def test_langchain_openai_client_works_through_the_gateway(indexed: Indexed, caplog: pytest.LogCaptureFixture) -> None:
    base = indexed.settings
    settings = base.model_copy(
        update={"rag": base.rag.model_copy(update={"gateway_rate_per_minute": 1, "gateway_burst": 3})}
    )
    key = settings.api.api_key.get_secret_value()
    caplog.set_level(logging.INFO, logger="mdslab.gateway")
    with background_server(create_app(settings)) as url:
        chat = ChatOpenAI(base_url=f"{url}/v1", api_key=SecretStr(key), model="mdslab-rag", max_retries=0, timeout=60)
        reply = chat.invoke("How do I rotate the API key?")
        streamed = "".join(str(chunk.content) for chunk in chat.stream("How do I rotate the API key?"))
        with pytest.raises(openai.AuthenticationError):
            ChatOpenAI(base_url=f"{url}/v1", api_key=SecretStr("wrong"), model="mdslab-rag", max_retries=0).invoke("hi")
        chat.invoke("What are the medallion layers?")  # the third request of the burst
        with pytest.raises(openai.RateLimitError):
            chat.invoke("One more?")
    content = str(reply.content)
    assert "secrets.env" in content and "Sources:" in content and "handbook/runbook.md" in content
    assert streamed == content
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "mdslab.gateway"]
    assert [r["status"] for r in records] == [200, 200, 401, 200, 429]
    assert records[2]["event"] == "refused"  # by the request guard, before the body was read
    served = [r for r in records if r["event"] == "chat_completion"]
    assert len(served) == 4 and all(r["model"] == "mdslab-rag" and r["backend"] == "local" for r in served)
    assert key not in caplog.text


def test_ask_prints_answer_citations_and_timings_as_json(indexed: Indexed) -> None:
    env = os.environ | indexed.settings.environment()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "mdslab"), "ask", "How do I rotate the API key?", "--json"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["citations"][0]["file"] == "handbook/runbook.md"
    assert set(body["timings_ms"]) == {"retrieve", "answer", "total"}
    assert re.search(r"mdslab up", body["answer"])


def test_the_evaluation_is_logged_to_mlflow_with_the_index_version(indexed: Indexed) -> None:
    report = evaluate_index(indexed.settings, indexed.lake, indexed.chain, per_kind=4)
    metrics = report.metrics()
    by_category = report.by_category()
    for category in ("claim_vendor", "claim_police_report", "customer_summary"):  # pinned by the key they name
        assert by_category[category]["hit_at_5"] == 1.0, (category, by_category[category])
    assert report.passed == (metrics["hit_at_5"] >= 0.8)
    assert 0 < metrics["mrr"] <= metrics["hit_at_5"]
    run = configure(indexed.settings).get_run(str(report.run_id))
    assert run.data.params["index_version"] == str(report.index_version)
    assert run.data.params["embedding_model"] == "all-MiniLM-L6-v2-onnx-int8"
    assert run.data.metrics["hit_at_5"] == pytest.approx(metrics["hit_at_5"])
    assert {"claim_police_report.hit_at_5", "catalog.containment", "document.mrr"} <= set(run.data.metrics)
    assert report.index_version == indexed.chain.store.version().version  # type: ignore[union-attr]


def test_the_deep_dive_runs_end_to_end(indexed: Indexed, spark_provider: Any) -> None:
    report = run_llm(indexed.settings, serve_api=serving_app, docs=[indexed.docs], spark=spark_provider)
    summary = report.as_dict()
    assert summary["index"]["removed"] == 0  # the docs are as the last index left them
    assert summary["evaluation"]["run_id"]
    assert summary["rag_query"]["citations"] and "Sources:" in report.gateway_answer


def test_indexing_a_missing_docs_folder_fails_before_touching_the_index(indexed: Indexed, tmp_path: Path) -> None:
    version = indexed.chain.store.version()
    with pytest.raises(FileNotFoundError):
        index_lake(indexed.settings, indexed.lake, docs=[tmp_path / "missing"])
    assert indexed.chain.store.version() == version
    assert file_documents(indexed.docs)


def test_the_generative_answer_step_works_through_an_openai_compatible_endpoint(indexed: Indexed) -> None:
    """``MDSLAB_RAG__ANSWERER=openai`` for real: ChatOpenAI sends the numbered sources to an OpenAI-compatible
    endpoint (here the lab's own gateway, whose local model answers) and the answer's [n] become citations."""
    base = indexed.settings
    key = base.api.api_key.get_secret_value()
    with background_server(create_app(base)) as upstream:
        rag = base.rag.model_copy(
            update={
                "answerer": "openai", "llm_base_url": f"{upstream}/v1", "llm_model": "mdslab-rag",
                "llm_api_key": SecretStr(key),
            }
        )  # fmt: skip
        chain = build_chain(base.model_copy(update={"rag": rag}), embeddings=indexed.chain.embeddings)
        try:
            answer = chain.ask("How do I rotate the API key?", k=1)
        finally:
            chain.store.close()
    assert answer.answerer == "openai"
    assert "secrets.env" in answer.answer and "[1]" in answer.answer
    assert [c.file for c in answer.citations] == ["handbook/runbook.md"]


def test_the_gateway_forwards_other_models_upstream_with_its_own_key(indexed: Indexed) -> None:
    """No LLM server can run here, so the upstream is a minimal OpenAI-compatible app defined in this test."""
    seen: list[tuple[str, dict[str, Any]]] = []
    upstream = FastAPI()

    @upstream.post("/v1/chat/completions")
    async def complete(request: Request) -> Any:
        body = await request.json()
        seen.append((request.headers.get("authorization", ""), body))
        text = f"upstream {body['model']} read: {body['messages'][-1]['content']}"
        if body.get("stream"):
            delta = {"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            chunk = {
                "id": "u1",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [delta],
            }
            return StreamingResponse(
                iter([f"data: {json.dumps(chunk)}\n\n", "data: [DONE]\n\n"]), media_type="text/event-stream"
            )
        return JSONResponse({"id": "u1", "object": "chat.completion", "created": 0, "model": body["model"],
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                          "finish_reason": "stop"}]})  # fmt: skip

    base = indexed.settings
    key = base.api.api_key.get_secret_value()
    with background_server(upstream) as upstream_url:
        rag = base.rag.model_copy(
            update={"llm_base_url": f"{upstream_url}/v1", "llm_model": "big-model", "llm_api_key": SecretStr("up-key")}
        )
        with background_server(create_app(base.model_copy(update={"rag": rag}))) as url:
            chat = ChatOpenAI(base_url=f"{url}/v1", api_key=SecretStr(key), model="big-model", max_retries=0)
            reply = chat.invoke("hello there")
            streamed = "".join(str(c.content) for c in chat.stream("stream please"))
            models = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {key}"}).json()
    assert reply.content == "upstream big-model read: hello there"
    assert streamed == "upstream big-model read: stream please"
    assert [auth for auth, _ in seen] == ["Bearer up-key", "Bearer up-key"]  # the caller's key stays here
    from mdslab.llm.gateway import ChatRequest

    assert all(set(body) <= set(ChatRequest.model_fields) for _, body in seen)  # unknown fields are not forwarded
    assert [m["id"] for m in models["data"]] == ["mdslab-rag", "big-model"]
