"""Answer steps: turn retrieved chunks into an answer with numbered citations.

The default is extractive and works offline: it quotes the retrieved sentences closest in meaning to
the question, so every word of the answer is in a cited source (small generative models shipped in
wheels answered 2 of 5 grounded questions here; the extractive step 5 of 5). The generative step sends
the same numbered sources to any OpenAI-compatible chat endpoint.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.prompts import ChatPromptTemplate

from mdslab.errors import ConfigurationError, ServiceUnavailableError
from mdslab.llm.embeddings import MiniLmEmbeddings
from mdslab.llm.identifiers import find_identifiers
from mdslab.settings import AnswererKind, RagSettings

SENTENCE_END = re.compile(r"(?<!\bSt\.)(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bNo\.)(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
WORD = re.compile(r"[a-z][a-z']+")
STOPWORDS = frozenset(
    [
        "a", "an", "the", "of", "in", "on", "for", "to", "and", "or", "is", "are", "was", "were", "be", "been",
        "by", "with", "at", "from", "as", "what", "which", "who", "whom", "whose", "when", "where", "why", "how",
        "does", "do", "did", "has", "have", "had", "this", "that", "these", "those", "it", "its", "into", "about",
        "any", "all", "there", "their", "claim", "claims",
    ]
)  # fmt: skip
LEXICAL_WEIGHT = 0.3  # the share of the question's words a sentence contains, next to cosine similarity
NOTHING_FOUND = "The index holds nothing relevant to this question."


@dataclass(frozen=True)
class Citation:
    """A numbered source of the answer; ``snippet`` is the cited text (the quoted sentence, if extractive)."""

    number: int
    source: str
    kind: str
    table: str | None
    table_version: int | None
    row_key: str | None
    file: str | None
    heading: str | None
    similarity: float
    snippet: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    text: str
    citations: list[Citation]
    answerer: str


class Answerer(Protocol):
    name: str

    def answer(self, question: str, documents: Sequence[Document]) -> Answer: ...


def _citation(number: int, document: Document, snippet: str) -> Citation:
    m = document.metadata
    return Citation(
        number=number,
        source=m["source"],
        kind=m["kind"],
        table=m.get("table"),
        table_version=m.get("table_version"),
        row_key=m.get("row_key"),
        file=m.get("file"),
        heading=m.get("heading"),
        similarity=m.get("similarity", 0.0),
        snippet=snippet,
    )


def sentences(text: str) -> list[str]:
    """Sentences of a chunk, one per list item or line at most (Markdown is unwrapped when indexed)."""
    return [
        s.strip()
        for line in text.splitlines()
        for s in SENTENCE_END.split(line.strip().lstrip("-*#| ").replace("**", ""))
        if len(s.strip()) > 3 and not s.strip().endswith(":")  # a label ("Adjuster notes:") says nothing
    ]


def _stems(text: str) -> set[str]:
    return {word[:5] for word in WORD.findall(text.lower()) if word not in STOPWORDS}


def _without_identifiers(text: str) -> str:
    """Keys carry no meaning to the sentence model; left in, they pull every sentence that repeats them
    (a claim's header line) above the sentence that answers."""
    for identifier in find_identifiers(text):
        text = text.replace(identifier, " ")
    return text


class ExtractiveAnswerer:
    """Quote the sentences of the top chunks closest in meaning to the question, each with its citation.

    Only the best ``top_documents`` chunks are read, and sentence vectors are cached (adjuster notes
    repeat many sentences), which keeps the step within tens of milliseconds on one core.
    """

    name = AnswererKind.EXTRACTIVE.value

    def __init__(
        self,
        embeddings: MiniLmEmbeddings,
        *,
        top_documents: int = 3,
        max_sentences: int = 3,
        margin: float = 0.1,
        sentences_per_document: int = 8,
        document_margin: float = 0.1,
        cache_size: int = 50_000,
    ) -> None:
        self.document_margin = document_margin
        self.sentences_per_document = sentences_per_document
        self.embeddings = embeddings
        self.top_documents = top_documents
        self.max_sentences = max_sentences
        self.margin = margin
        self._cache: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _vectors(self, texts: list[str]) -> npt.NDArray[np.float32]:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        fresh = self.embeddings.embed(missing) if missing else None
        with self._lock:
            for i, text in enumerate(missing):
                assert fresh is not None
                self._cache[text] = fresh[i]
            rows = []
            for text in texts:
                self._cache.move_to_end(text)
                rows.append(self._cache[text])
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return np.vstack(rows)

    def answer(self, question: str, documents: Sequence[Document]) -> Answer:
        top = list(documents[: self.top_documents])
        # a question that names a key is about that row: quote only rows that contain the key
        pinned = [d for d in top if d.metadata.get("matched_identifier")]
        # otherwise only chunks about as close as the closest one: a far second chunk's sentence can share
        # a word with the question ("key") and outscore the right chunk's sentence
        closest = max((d.metadata.get("similarity", 0.0) for d in top), default=0.0)
        by_text: dict[str, list[int]] = {}  # a sentence repeated in several chunks is quoted once, cited by all
        for rank, document in enumerate(top):
            if pinned and document not in pinned:
                continue
            if not pinned and document.metadata.get("similarity", 0.0) < closest - self.document_margin:
                continue
            found = sentences(document.page_content)
            if document.metadata.get("heading") and found and document.metadata["heading"].endswith(found[0]):
                found = found[1:]  # the heading line that starts a document chunk is not an answer
            for sentence in found[: self.sentences_per_document]:
                by_text.setdefault(sentence, []).append(rank)
        if not by_text:
            return Answer(NOTHING_FOUND, [], self.name)
        texts = list(by_text)
        query = self.embeddings.embed([_without_identifiers(question)])[0]
        similarity = self._vectors([_without_identifiers(t) for t in texts]) @ query
        asked = _stems(_without_identifiers(question))
        overlap = np.array([len(asked & _stems(t)) / len(asked) if asked else 0.0 for t in texts])
        scores = similarity + LEXICAL_WEIGHT * overlap - 0.02 * np.array([min(by_text[t]) for t in texts])
        order = np.argsort(-scores)
        best = float(scores[order[0]])
        chosen = [int(i) for i in order[: self.max_sentences] if scores[i] >= best - self.margin]
        numbers: dict[int, int] = {}
        parts, citations = [], []
        for index in chosen:
            marks = []
            for rank in by_text[texts[index]]:
                if rank not in numbers:
                    numbers[rank] = len(numbers) + 1
                    citations.append(_citation(numbers[rank], documents[rank], texts[index]))
                marks.append(f"[{numbers[rank]}]")
            parts.append(f"{texts[index]} {''.join(marks)}")
        return Answer(" ".join(parts), citations, self.name)


PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "You answer questions about a financial data lake using only the numbered sources. Cite every "
            "statement with its source number in square brackets, like [2]. If the sources do not answer "
            "the question, say so.",
        ),
        ("human", "Sources:\n{sources}\n\nQuestion: {question}"),
    ]
)
CITED = re.compile(r"\[(\d+)\]")


class ChatModelAnswerer:
    """Generate the answer with a chat model (``langchain_openai.ChatOpenAI`` against any OpenAI-compatible
    endpoint) from the numbered sources; citations are the sources the answer refers to."""

    name = AnswererKind.OPENAI.value

    def __init__(self, model: BaseChatModel) -> None:
        self.chain = PROMPT | model

    def answer(self, question: str, documents: Sequence[Document]) -> Answer:
        if not documents:
            return Answer(NOTHING_FOUND, [], self.name)
        sources = "\n".join(
            f"[{n}] ({d.metadata['source']}) {d.page_content}" for n, d in enumerate(documents, start=1)
        )
        import openai  # the client langchain_openai uses; 1.8 s to import, so only when this answerer runs

        try:
            reply = self.chain.invoke({"sources": sources, "question": question})
        except openai.APIError as exc:
            # a 503 naming the setting; never the upstream's URL or its response body
            code = getattr(exc, "status_code", None)
            raise ServiceUnavailableError(
                f"the chat model at MDSLAB_RAG__LLM_BASE_URL did not answer ({type(exc).__name__}"
                f"{f', HTTP {code}' if code else ''}): check it, or use MDSLAB_RAG__ANSWERER=extractive"
            ) from None
        text = str(reply.content)
        referred = {int(n) for n in CITED.findall(text)} & set(range(1, len(documents) + 1))
        numbers = sorted(referred) or list(range(1, len(documents) + 1))
        return Answer(text, [_citation(n, documents[n - 1], documents[n - 1].page_content) for n in numbers], self.name)


def make_answerer(rag: RagSettings, embeddings: MiniLmEmbeddings) -> Answerer:
    """The answer step the settings choose (``MDSLAB_RAG__ANSWERER``)."""
    if rag.answerer is AnswererKind.EXTRACTIVE:
        return ExtractiveAnswerer(embeddings)
    if not rag.llm_base_url:
        raise ConfigurationError("MDSLAB_RAG__ANSWERER=openai needs MDSLAB_RAG__LLM_BASE_URL")
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(
        base_url=rag.llm_base_url,
        model=rag.llm_model,
        api_key=rag.llm_api_key.get_secret_value() or "not-needed",  # type: ignore[arg-type]
        temperature=0,
        timeout=60,
        max_retries=1,
    )
    return ChatModelAnswerer(model)
