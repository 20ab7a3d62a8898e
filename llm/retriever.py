"""Retrieval: identifiers named in the question pin their rows, meaning fills the rest.

A question such as "which garage repaired claim CL00000042?" names a key that a sentence embedding
barely sees, so chunks containing that key (full-text match) come first, ordered by similarity; the
remaining places go to the nearest chunks by cosine similarity (HNSW). Exposed to LangChain as a
``BaseRetriever``.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from mdslab.llm.embeddings import MiniLmEmbeddings
from mdslab.llm.identifiers import find_identifiers
from mdslab.llm.store import Hit, PgVectorStore, RetrievalFilter


def retrieve(
    store: PgVectorStore,
    embeddings: MiniLmEmbeddings,
    question: str,
    *,
    k: int,
    where: RetrievalFilter | None = None,
) -> list[Hit]:
    vector = embeddings.embed([question])[0]
    identifiers = find_identifiers(question)
    # the row a key names comes before rows that only mention it (a customer's summary before their claims)
    pinned = sorted(
        store.identifier_search(identifiers, vector, k, where), key=lambda hit: hit.row_key not in identifiers
    )
    nearest = store.search(vector, k, where)
    seen = {hit.chunk_id for hit in pinned}
    return [*pinned, *(hit for hit in nearest if hit.chunk_id not in seen)][:k]


def hit_metadata(hit: Hit) -> dict[str, Any]:
    return {
        "chunk_id": hit.chunk_id,
        "source": hit.source,
        "kind": hit.kind,
        "table": hit.source_table,
        "table_version": hit.table_version,
        "row_key": hit.row_key,
        "file": hit.file,
        "heading": hit.heading,
        "event_date": hit.event_date.isoformat() if hit.event_date else None,
        "similarity": round(hit.similarity, 4),
        "matched_identifier": hit.matched_identifier,
    }


class LakeRetriever(BaseRetriever):
    """The lake's index as a LangChain retriever; metadata carries the source of each chunk."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: PgVectorStore
    embeddings: MiniLmEmbeddings
    k: int = 5
    where: RetrievalFilter | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = retrieve(self.store, self.embeddings, query, k=self.k, where=self.where)
        return [Document(page_content=hit.text, metadata=hit_metadata(hit), id=hit.chunk_id) for hit in hits]
