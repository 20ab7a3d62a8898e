"""Documents -> chunks of at most ~200 tokens, each with a stable id and a hash of what gets embedded.

The id (document id + position) says *which* chunk; the hash says *what* it contains. Re-indexing
compares hashes to embed only chunks whose text changed; metadata such as a table's version can move
without a new embedding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

from mdslab.llm.corpus import SourceDocument


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    ordinal: int
    text: str
    content_hash: str
    document: SourceDocument


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_documents(documents: Iterable[SourceDocument], *, max_chars: int, overlap: int) -> list[Chunk]:
    """Split on paragraphs, then lines, then sentences, then words; later chunks of a document section
    repeat its heading so they still say what they are about."""
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=max_chars,
        chunk_overlap=min(overlap, max_chars // 2),
        separators=["\n\n", "\n", ". ", " ", ""],
        keep_separator="end",
    )
    chunks = []
    for document in documents:
        pieces = [document.text] if len(document.text) <= max_chars else splitter.split_text(document.text)
        for ordinal, piece in enumerate(pieces):
            text = piece if ordinal == 0 or not document.heading else f"{document.heading}\n{piece}"
            chunks.append(Chunk(f"{document.doc_id}#{ordinal}", ordinal, text, content_hash(text), document))
    return chunks
