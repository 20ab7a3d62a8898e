"""Incremental indexing: embed only chunks that are new or whose text changed, update the labels of the
rest (a table's new version), remove chunks whose rows or file sections are gone, as one index version.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from mdslab.llm.chunking import Chunk, chunk_documents
from mdslab.llm.corpus import SourceDocument, scopes_of
from mdslab.llm.embeddings import MODEL_ID, MiniLmEmbeddings
from mdslab.llm.store import ChunkChanges, IndexVersion, PgVectorStore, label_hash

EMBED_BATCH = 256


@dataclass(frozen=True)
class IndexReport:
    """What one run did; ``version`` is None when nothing changed (no new index version)."""

    documents: int
    chunks: int
    embedded: int
    relabelled: int
    removed: int
    unchanged: int
    version: int | None
    total_chunks: int
    embed_seconds: float
    seconds: float

    @property
    def chunks_per_second(self) -> float:
        return self.embedded / self.embed_seconds if self.embed_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "chunks_per_second": round(self.chunks_per_second, 1)}


def plan_changes(
    chunks: Sequence[Chunk], indexed: dict[str, tuple[str, str]]
) -> tuple[list[Chunk], list[Chunk], list[str]]:
    """(to embed, to relabel, to remove), comparing this run's chunks with what the scopes hold."""
    embed = [c for c in chunks if indexed.get(c.chunk_id, ("", ""))[0] != c.content_hash]
    relabel = [
        c
        for c in chunks
        if c.chunk_id in indexed
        and indexed[c.chunk_id][0] == c.content_hash
        and indexed[c.chunk_id][1] != label_hash(c)
    ]
    current = {c.chunk_id for c in chunks}
    remove = sorted(chunk_id for chunk_id in indexed if chunk_id not in current)
    return embed, relabel, remove


def index_documents(
    store: PgVectorStore,
    embeddings: MiniLmEmbeddings,
    documents: Sequence[SourceDocument],
    *,
    scopes: Sequence[str] | None = None,
    max_chars: int = 800,
    overlap: int = 100,
    on_progress: Callable[[int, int], None] = lambda _done, _total: None,
) -> IndexReport:
    """Bring ``scopes`` (default: the documents' own) in line with ``documents``.

    ``on_progress(embedded, to_embed)`` is called after each embedding batch, for progress bars.
    """
    started = time.perf_counter()
    owned = sorted(set(scopes) if scopes is not None else scopes_of(documents))
    chunks = chunk_documents(documents, max_chars=max_chars, overlap=overlap)
    duplicates = len(chunks) - len({c.chunk_id for c in chunks})
    if duplicates:
        raise ValueError(f"{duplicates} chunks share an id: two documents have the same doc_id")
    embed, relabel, remove = plan_changes(chunks, store.hashes(owned))
    embed_started = time.perf_counter()
    vectors = []
    on_progress(0, len(embed))
    for start in range(0, len(embed), EMBED_BATCH):
        batch = embed[start : start + EMBED_BATCH]
        vectors.append(embeddings.embed([c.text for c in batch]))
        on_progress(start + len(batch), len(embed))
    embed_seconds = time.perf_counter() - embed_started
    version: IndexVersion | None = None
    if embed or relabel or remove:
        matrix = np.vstack(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)
        version = store.apply(ChunkChanges(embed, matrix, relabel, remove, owned, MODEL_ID))
    return IndexReport(
        documents=len(documents),
        chunks=len(chunks),
        embedded=len(embed),
        relabelled=len(relabel),
        removed=len(remove),
        unchanged=len(chunks) - len(embed) - len(relabel),
        version=version.version if version else None,
        total_chunks=version.chunks if version else store.count(),
        embed_seconds=embed_seconds,
        seconds=time.perf_counter() - started,
    )
