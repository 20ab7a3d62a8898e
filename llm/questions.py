"""The evaluation question set, built from facts the corpus is known to hold.

Claims questions come from the simulator's adjuster notes (vendors, police reports, flights, doubts the
simulator planted); customer questions from the summaries; catalog questions from the table registry;
document questions from the indexed files' headings. Each question names what counts as a hit (the
rows or file sections that hold the answer) and a phrase the answer must contain.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from mdslab.llm.answer import sentences  # the answer step's own split defines "a sentence"
from mdslab.llm.corpus import Kind, SourceDocument
from mdslab.workloads.simulator.notes import CONTRACTORS, DOUBTS, GARAGES, HOSPITALS

POLICE_REPORT = re.compile(r"Police report (PR-\d{4}-\d{6})")
FLIGHT = re.compile(r"flight ([A-Z][A-Za-z ]+ [A-Z]{2}\d+)")
CLAIM_COUNT = re.compile(r"Insurance: (\d+ claims?) totalling")
SEMANTIC_DOUBTS = {
    "Which claims were referred to special investigations because the receipts looked tampered with?": DOUBTS[2],
    "Which claims have statements that contradict each other about when the incident happened?": DOUBTS[0],
    "Where does the damage seem to predate the incident the policyholder reported?": DOUBTS[3],
}


@dataclass(frozen=True)
class Question:
    """``relevant`` holds source keys (``table:row_key`` or ``file#heading``); ``expect`` a phrase of the
    answer; ``alternatives`` other phrases that also count (a document section's sentences)."""

    text: str
    category: str
    relevant: frozenset[str]
    expect: str
    alternatives: tuple[str, ...] = field(default=())

    def contained_in(self, answer: str) -> bool:
        low = answer.lower()
        return any(phrase.lower() in low for phrase in (self.expect, *self.alternatives))


def source_key(table: str | None, row_key: str | None, file: str | None, heading: str | None) -> str:
    return f"{file}#{heading or ''}" if file is not None else f"{table}:{row_key}"


def _key(document: SourceDocument) -> str:
    return source_key(document.source_table, document.row_key, document.file, document.heading)


def _claim_questions(claims: Sequence[SourceDocument], rng: random.Random, per_kind: int) -> list[Question]:
    vendors = {name: "repair" for name in (*CONTRACTORS, *GARAGES)} | {name: "care" for name in HOSPITALS}
    kinds: dict[str, list[Question]] = {"vendor": [], "care": [], "police": [], "flight": []}
    for document in rng.sample(list(claims), len(claims)):
        claim, key, text = document.row_key, frozenset({_key(document)}), document.text
        for name, kind in vendors.items():
            if name in text and kind == "repair":
                ask = f"Which company sent the repair estimate or invoice for claim {claim}?"
                kinds["vendor"].append(Question(ask, "claim_vendor", key, name))
            elif name in text and kind == "care":
                kinds["care"].append(
                    Question(f"Which hospital billed the treatment in claim {claim}?", "claim_care", key, name)
                )
        if match := POLICE_REPORT.search(text):
            ask = f"What is the police report number for claim {claim}?"
            kinds["police"].append(Question(ask, "claim_police_report", key, match.group(1)))
        if match := FLIGHT.search(text):
            kinds["flight"].append(
                Question(f"Which flight was involved in claim {claim}?", "claim_flight", key, match.group(1))
            )
    return [q for questions in kinds.values() for q in questions[:per_kind]]


def _doubt_questions(claims: Sequence[SourceDocument]) -> list[Question]:
    questions = []
    for ask, sentence in SEMANTIC_DOUBTS.items():
        relevant = frozenset(_key(d) for d in claims if sentence.split("(")[0] in d.text)
        if relevant:
            questions.append(Question(ask, "claim_semantic", relevant, sentence.split("(")[0].strip()[:40]))
    return questions


def _customer_questions(customers: Sequence[SourceDocument], rng: random.Random, n: int) -> list[Question]:
    questions = []
    for document in rng.sample(list(customers), min(n, len(customers))):
        if match := CLAIM_COUNT.search(document.text):
            ask = f"How many insurance claims has customer {document.row_key} filed?"
            questions.append(Question(ask, "customer_summary", frozenset({_key(document)}), match.group(1)))
    return questions


def _catalog_questions(tables: Sequence[SourceDocument], rng: random.Random, n: int) -> list[Question]:
    questions = []
    for document in rng.sample(list(tables), min(n, len(tables))):
        description = document.text.split(": ", 1)[1].split("\n")[0].split(". ")[0].rstrip(".")
        ask = f"Which table holds {description[0].lower()}{description[1:]}?"
        questions.append(Question(ask, "catalog", frozenset({_key(document)}), str(document.source_table)))
    return questions


def _document_questions(sections: Sequence[SourceDocument], rng: random.Random, n: int) -> list[Question]:
    questions = []
    usable = [d for d in sections if d.heading and len(d.text) > 200]
    for document in rng.sample(usable, min(n, len(usable))):
        heading = str(document.heading).split(" > ")
        topic = ": ".join(heading[-2:]) if len(heading) > 1 else heading[0]
        body = sentences(document.text)[1:]
        if body:
            ask = f"What do the docs say about {topic}?"
            questions.append(Question(ask, "document", frozenset({_key(document)}), body[0], tuple(body[1:])))
    return questions


def build_questions(documents: Sequence[SourceDocument], *, seed: int = 7, per_kind: int = 10) -> list[Question]:
    """A reproducible question set over ``documents`` (the corpus as indexed)."""
    rng = random.Random(seed)
    by_kind: dict[str, list[SourceDocument]] = {}
    for document in documents:
        by_kind.setdefault(document.kind, []).append(document)
    claims = by_kind.get(Kind.CLAIM, [])
    return [
        *_claim_questions(claims, rng, per_kind),
        *_doubt_questions(claims),
        *_customer_questions(by_kind.get(Kind.CUSTOMER, []), rng, per_kind),
        *_catalog_questions(by_kind.get(Kind.TABLE, []), rng, per_kind),
        *_document_questions(by_kind.get(Kind.DOCUMENT, []), rng, 2 * per_kind),
    ]
