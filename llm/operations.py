"""The RAG operations every front end calls (CLI, API, deep dive, DAGs): index, evaluate.

They take the settings and the pieces they need; nothing here prints or parses arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from openlineage.client.event_v2 import InputDataset

from mdslab.lakehouse import Lakehouse
from mdslab.llm.chain import RagChain, open_store
from mdslab.llm.corpus import TABLES_SCOPE, SourceDocument
from mdslab.llm.embeddings import MiniLmEmbeddings
from mdslab.llm.evaluation import EvalReport, evaluate, log_to_mlflow
from mdslab.llm.folder_documents import docs_scope, file_documents
from mdslab.llm.indexer import IndexReport, index_documents
from mdslab.llm.lake_documents import CLAIM_COLUMNS, CLAIMS_TABLE, table_documents
from mdslab.llm.questions import build_questions
from mdslab.llm.store import CHUNKS_TABLE, IndexMissingError, PgVectorStore
from mdslab.settings import Settings
from mdslab.workloads.lineage import naming
from mdslab.workloads.lineage.job_runs import lake_input, other_input, other_output, reported_run

Progress = Callable[[int, int], None]


def corpus(lake: Lakehouse, docs: Sequence[Path] = ()) -> list[SourceDocument]:
    """The curated tables plus the given folders (or files) of Markdown/text."""
    return [*table_documents(lake), *(d for root in docs for d in file_documents(root))]


def indexed_doc_roots(store: PgVectorStore) -> list[Path]:
    """Folders an earlier ``rag index --docs`` put in the index (their scopes)."""
    return [Path(scope.removeprefix("docs:")) for scope in store.scopes() if scope.startswith("docs:")]


def index_lake(
    settings: Settings,
    lake: Lakehouse,
    *,
    docs: Sequence[Path] = (),
    embeddings: MiniLmEmbeddings | None = None,
    on_progress: Progress = lambda _done, _total: None,
) -> IndexReport:
    """Index the curated tables and ``docs`` incrementally; other folders already indexed stay as they are."""
    store = open_store(settings)
    description = "Chunks and embeds the curated tables and document folders into the pgvector index."
    try:
        with reported_run(settings, "mdslab.rag.index", description) as run:
            documents = corpus(lake, docs)
            run.inputs += _indexed_inputs(lake, documents)
            scopes = [TABLES_SCOPE, *(docs_scope(root) for root in docs)]
            report = index_documents(
                store,
                embeddings or MiniLmEmbeddings(threads=2),
                documents,
                scopes=scopes,
                max_chars=settings.rag.chunk_chars,
                overlap=settings.rag.chunk_overlap,
                on_progress=on_progress,
            )
            claims = naming.lake_table(lake, CLAIMS_TABLE)
            from_claims = [(claims, column, "DIRECT", "TRANSFORMATION") for column in CLAIM_COLUMNS]
            run.outputs.append(
                other_output(
                    naming.postgres_table(settings.postgres, settings.rag.schema_name, CHUNKS_TABLE),
                    version=None if report.version is None else str(report.version),
                    rows=report.total_chunks,
                    fields=["text", "embedding"],
                    columns={"text": from_claims, "embedding": from_claims},
                )
            )
            return report
    finally:
        store.close()


def _indexed_inputs(lake: Lakehouse, documents: Sequence[SourceDocument]) -> list[InputDataset]:
    """The lake tables at the versions the documents were read from, and the folders indexed."""
    tables = {d.source_table: d.table_version for d in documents if d.source_table and d.source_table in lake.registry}
    folders = sorted({d.file for d in documents if d.file is not None})
    return [lake_input(lake, table, version) for table, version in sorted(tables.items())] + [
        other_input(("file", folder)) for folder in folders
    ]


def evaluate_index(
    settings: Settings,
    lake: Lakehouse,
    chain: RagChain,
    *,
    k: int | None = None,
    gate_hit_at_k: float = 0.8,
    per_kind: int = 10,
    log: bool = True,
    on_progress: Progress = lambda _done, _total: None,
) -> EvalReport:
    """Build the question set from the corpus as indexed, answer it, and log the run to MLflow."""
    version = chain.store.version()
    if version is None:
        raise IndexMissingError("the RAG index is empty: build it with `mdslab rag index` first")
    documents = corpus(lake, indexed_doc_roots(chain.store))
    questions = build_questions(documents, per_kind=per_kind)
    top_k = k or settings.rag.top_k
    results = evaluate(chain, questions, k=top_k, on_progress=on_progress)
    report = EvalReport(results, top_k, version.version, None, gate_hit_at_k)
    if not log:
        return report
    from mdslab.tracking import configure

    run_id = log_to_mlflow(configure(settings), settings, report, chunks=version.chunks, answerer=chain.answerer.name)
    return dataclasses.replace(report, run_id=run_id)
