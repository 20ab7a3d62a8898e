"""What the RAG index knows: documents, each naming its source precisely enough to check a citation.

A document comes from the curated lake (a table, its Delta version and the row key: ``silver.claims``
v7, ``CL00000042``; :mod:`mdslab.llm.lake_documents`) or from a folder of Markdown/text (a file and
heading; :mod:`mdslab.llm.folder_documents`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

TABLES_SCOPE = "tables"


class Kind:
    """Values of a document's ``kind``: what it describes."""

    CLAIM = "claim"
    CUSTOMER = "customer"
    MERCHANT = "merchant"
    TABLE = "table"
    DOCUMENT = "document"


@dataclass(frozen=True)
class SourceDocument:
    """One unit of the corpus before chunking.

    ``doc_id`` is stable across re-indexing (same row or file section, same id); ``scope`` groups the
    documents one indexing run owns, so that a run removes only what disappeared from its own scope.
    """

    doc_id: str
    scope: str
    kind: str
    text: str
    source_table: str | None = None
    table_version: int | None = None
    row_key: str | None = None
    file: str | None = None
    heading: str | None = None
    event_date: date | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """The citation, in one line a person can follow."""
        if self.file is not None:
            return f"{self.file} > {self.heading}" if self.heading else self.file
        return f"{self.source_table} v{self.table_version} [{self.row_key}]"


def scopes_of(documents: Iterable[SourceDocument]) -> set[str]:
    return {document.scope for document in documents}
