"""The RAG text path without a database: documents and their sources, chunking and change plans,
identifier detection, and the extractive answer step (with the real MiniLM model)."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document

from mdslab.llm.answer import ExtractiveAnswerer, sentences
from mdslab.llm.chunking import chunk_documents
from mdslab.llm.corpus import Kind, SourceDocument
from mdslab.llm.embeddings import MiniLmEmbeddings
from mdslab.llm.folder_documents import file_documents, unwrap
from mdslab.llm.identifiers import find_identifiers
from mdslab.llm.indexer import plan_changes
from mdslab.llm.store import label_hash

GUIDE = """# Operations guide

Intro text before any section,
wrapped over two lines.

## Restarting the consumer

Stop it with SIGTERM: it writes the batch in hand
and exits. Then start it again.

```bash
# not a heading: a comment in a code block
mdslab stream
```

## Backfills

- Land the files with `mdslab simulate --target lake`,
  then run the pipeline.
- Check `mdslab tables`.
"""


@pytest.fixture(scope="module")
def embeddings() -> MiniLmEmbeddings:
    return MiniLmEmbeddings()


def test_markdown_sections_keep_their_file_and_heading_path(tmp_path: Path) -> None:
    folder = tmp_path / "handbook"
    (folder / "ops").mkdir(parents=True)
    (folder / "ops" / "guide.md").write_text(GUIDE)
    (folder / "notes.txt").write_text("Plain text is one document.")
    (folder / "image.png").write_bytes(b"\x89PNG")
    documents = file_documents(folder)
    by_heading = {d.heading: d for d in documents if d.file == "handbook/ops/guide.md"}
    assert set(by_heading) == {
        "Operations guide",
        "Operations guide > Restarting the consumer",
        "Operations guide > Backfills",
    }
    restart = by_heading["Operations guide > Restarting the consumer"]
    assert "# not a heading" in restart.text and "mdslab stream" in restart.text
    assert "writes the batch in hand and exits." in restart.text  # hard-wrapped lines joined
    assert restart.source == "handbook/ops/guide.md > Operations guide > Restarting the consumer"
    assert [d.file for d in documents if d.heading is None] == ["handbook/notes.txt"]
    assert {d.scope for d in documents} == {f"docs:{folder.resolve()}"}
    assert all(d.kind == Kind.DOCUMENT for d in documents)


def test_unwrap_keeps_list_items_headings_and_code_apart() -> None:
    text = unwrap("# Title\nline one\nline two\n- item a\n  continues\n- item b\n```\ncode 1\ncode 2\n```\n")
    assert text.splitlines() == ["# Title", "line one line two", "- item a continues", "- item b", "```", "code 1",
                                 "code 2", "```"]  # fmt: skip


def test_a_missing_docs_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        file_documents(tmp_path / "nope")


def _document(doc_id: str, text: str, *, version: int = 1, heading: str | None = None) -> SourceDocument:
    return SourceDocument(doc_id, "tables", Kind.CLAIM, text, "silver.claims", version, doc_id, heading=heading)


def test_long_documents_split_into_bounded_chunks_that_repeat_the_heading() -> None:
    text = " ".join(f"Sentence number {i} says something about the lake." for i in range(60))
    chunks = chunk_documents([_document("a", text, heading="Guide > Part")], max_chars=300, overlap=50)
    assert len(chunks) > 5
    assert all(len(c.text) <= 300 + len("Guide > Part\n") for c in chunks)
    assert [c.chunk_id for c in chunks] == [f"a#{i}" for i in range(len(chunks))]
    assert all(c.text.startswith("Guide > Part\n") for c in chunks[1:])
    assert all(c.text.rstrip().endswith(".") for c in chunks)  # split after sentences, not inside them


def test_change_plan_embeds_new_and_changed_text_relabels_moved_versions_and_removes_the_rest() -> None:
    before = chunk_documents(
        [_document("a", "one"), _document("b", "two"), _document("c", "three")], max_chars=800, overlap=0
    )
    indexed = {c.chunk_id: (c.content_hash, label_hash(c)) for c in before}
    after = chunk_documents(
        [_document("a", "one"), _document("b", "two", version=2), _document("d", "four"), _document("c", "3")],
        max_chars=800,
        overlap=0,
    )
    embed, relabel, remove = plan_changes(after, indexed)
    assert sorted(c.chunk_id for c in embed) == ["c#0", "d#0"]
    assert [c.chunk_id for c in relabel] == ["b#0"]
    assert remove == []
    embed, relabel, remove = plan_changes(after[:1], indexed)
    assert (embed, relabel, remove) == ([], [], ["b#0", "c#0"])


def test_identifiers_in_questions_are_found() -> None:
    question = "Is claim CL00000042 of customer C0000007 linked to PR-2026-000123 or flight EJ1234 (2026-10-01)?"
    assert find_identifiers(question) == ["CL00000042", "C0000007", "PR-2026-000123", "EJ1234"]
    assert find_identifiers("which claims mention altered receipts?") == []


def test_sentences_keep_abbreviations_and_list_items() -> None:
    assert sentences("Invoice from St. Mary's Hospital: 300 USD. Approved.\n- a list item. Next one") == [
        "Invoice from St. Mary's Hospital: 300 USD.",
        "Approved.",
        "a list item.",
        "Next one",
    ]


def _retrieved(text: str, source: str, *, pinned: bool = False) -> Document:
    return Document(
        page_content=text,
        metadata={"source": source, "kind": "claim", "table": "silver.claims", "table_version": 3,
                  "row_key": source, "file": None, "heading": None, "similarity": 0.5, "matched_identifier": pinned},
    )  # fmt: skip


def test_the_extractive_answer_quotes_the_sentence_that_answers_with_its_citation(embeddings: MiniLmEmbeddings) -> None:
    documents = [
        _retrieved(
            "Claim CL00000001: collision claim on auto policy P0000001. Status: open.\nAdjuster notes: Vehicle was "
            "rear-ended at a traffic light. Repair quote by Northside Auto Body totals 3,500 USD.",
            "CL00000001",
            pinned=True,
        ),
        _retrieved("Claim CL00000002: glass claim. Windscreen cracked by a stone chip.", "CL00000002"),
    ]
    answer = ExtractiveAnswerer(embeddings, max_sentences=1).answer(
        "Which garage gave the repair quote for claim CL00000001?", documents
    )
    assert answer.text == "Repair quote by Northside Auto Body totals 3,500 USD. [1]"
    assert [(c.number, c.row_key, c.snippet) for c in answer.citations] == [
        (1, "CL00000001", "Repair quote by Northside Auto Body totals 3,500 USD.")
    ]


def test_a_sentence_found_in_several_sources_is_quoted_once_and_cites_them_all(embeddings: MiniLmEmbeddings) -> None:
    doubt = "Receipts submitted appear altered; referred to the special investigations unit."
    documents = [_retrieved(f"Adjuster notes: Theft of a bike. {doubt}", f"CL0000000{i}") for i in range(3)]
    answer = ExtractiveAnswerer(embeddings, max_sentences=1).answer("Which claims have altered receipts?", documents)
    assert answer.text == f"{doubt} [1][2][3]"
    assert [c.row_key for c in answer.citations] == ["CL00000000", "CL00000001", "CL00000002"]


def test_nothing_retrieved_gives_an_answer_without_citations(embeddings: MiniLmEmbeddings) -> None:
    answer = ExtractiveAnswerer(embeddings).answer("anything?", [])
    assert answer.citations == [] and "nothing relevant" in answer.text


def test_indexing_stays_inside_the_folder_and_skips_oversized_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Was: links were followed anywhere on the machine and files of any size were read."""
    from mdslab.llm.folder_documents import MAX_DOCUMENT_BYTES

    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.md").write_text("# Secret\nThe root password is hunter2.\n")
    handbook = tmp_path / "handbook"
    handbook.mkdir()
    (handbook / "guide.md").write_text("# Guide\nClaims are paid within 30 days.\n")
    (handbook / "also-guide.md").symlink_to(handbook / "guide.md")  # inside: kept
    (handbook / "secret.md").symlink_to(outside / "secret.md")
    (handbook / "linked-folder").symlink_to(outside, target_is_directory=True)
    (handbook / "dump.txt").write_text("x" * (MAX_DOCUMENT_BYTES + 1))

    documents = file_documents(handbook)

    assert sorted({d.file for d in documents}) == ["handbook/also-guide.md", "handbook/guide.md"]
    assert not any("hunter2" in d.text for d in documents)
    assert "skipped" in caplog.text and "outside the folder being indexed" in caplog.text
    assert "a link to a folder (not followed)" in caplog.text
    assert f"over the {MAX_DOCUMENT_BYTES:,}-byte limit" in caplog.text
