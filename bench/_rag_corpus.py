"""The corpus of bench/rag.py (why it is built this way: bench/README.md, `bench/rag.py`): simulated claims
as claim documents, the question set, and the synthetic vectors that stand in for chunks not embedded.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from mdslab.llm.chunking import chunk_documents
from mdslab.llm.corpus import SourceDocument
from mdslab.llm.embeddings import DIMENSIONS
from mdslab.llm.lake_documents import CLAIM_COLUMNS, claim_document
from mdslab.llm.questions import Question, build_questions
from mdslab.workloads.pipeline.fx import FX_TO_USD
from mdslab.workloads.simulator import SimulationConfig, simulate

SCOPE = "bench:claims"
CLAIMS_PER_TRANSACTION = 0.02  # the simulator's default, 20 claims per 1,000 transactions

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Corpus:
    documents: list[SourceDocument]  # in claim order
    chunks_per_document: list[int]
    transactions: int
    seed: int

    def prefix(self, chunks: int) -> list[SourceDocument]:
        """The first documents holding at most ``chunks`` chunks (claims are one chunk each, mostly)."""
        total, count = 0, 0
        for n in self.chunks_per_document:
            if total + n > chunks:
                break
            total, count = total + n, count + 1
        return self.documents[:count]


def claim_rows(transactions: int, seed: int) -> list[dict[str, Any]]:
    """The rows ``silver.claims`` would hold (``CLAIM_COLUMNS``), in claim order: the raw claim events simulated
    without defects, plus what silver adds (``product`` from the policy, ``amount_claimed_usd`` through the
    pipeline's FX table); ``build_corpus`` makes each a document with the platform's ``claim_document``."""
    data = simulate(SimulationConfig(transactions=transactions, seed=seed, invalid_share=0.0))
    policies = data.policies
    product = dict(zip(policies.column("policy_id").to_pylist(), policies.column("product").to_pylist(), strict=True))
    rows = []
    for payload in data.claims.column("payload").to_pylist():
        row = json.loads(payload)
        row["product"] = product[row["policy_id"]]
        row["incident_date"] = date.fromisoformat(row["incident_date"])
        row["reported_at"] = datetime.fromisoformat(row["reported_at"])
        row["amount_claimed_usd"] = round(row["amount_claimed"] * FX_TO_USD[row["currency"]], 2)
        rows.append({column: row[column] for column in CLAIM_COLUMNS})
    return rows


def build_corpus(chunks: int, seed: int, *, max_chars: int, overlap: int) -> Corpus:
    """At least ``chunks`` chunks of claim documents (one claim per ~0.02 simulated transactions)."""
    transactions = max(1_000, math.ceil(chunks / CLAIMS_PER_TRANSACTION))
    while True:
        documents = [claim_document(row, version=None, scope=SCOPE) for row in claim_rows(transactions, seed)]
        per_document = [len(chunk_documents([d], max_chars=max_chars, overlap=overlap)) for d in documents]
        if sum(per_document) >= chunks:
            return Corpus(documents, per_document, transactions, seed)
        transactions = math.ceil(transactions * 1.1)


def questions(documents: list[SourceDocument], count: int, seed: int) -> list[Question]:
    """``count`` questions from ``mdslab.llm.questions.build_questions`` over ``documents`` (vendor, hospital,
    police report and flight of a named claim, plus the planted doubts), shuffled; repeated if too few."""
    per_kind = math.ceil(count / 4) + 5
    found = build_questions(documents, seed=seed, per_kind=per_kind)
    random.Random(seed).shuffle(found)
    if not found:
        raise RuntimeError("no questions could be built from the corpus")
    return [found[i % len(found)] for i in range(count)]


def warm_up_questions(documents: list[SourceDocument], count: int) -> list[str]:
    """Questions about the last claims, asked before measuring (they load the model, fill pools)."""
    return [f"What happened in claim {d.row_key} and what did the adjuster note?" for d in documents[-count:]]


# --- synthetic vectors -------------------------------------------------------------------------------


def nearest_similarity(sample: Vectors, pool: Vectors, sample_rows: npt.NDArray[np.int64] | None) -> Vectors:
    """Cosine similarity of each sampled vector to its nearest vector in ``pool`` (itself excluded when
    ``sample_rows`` gives its row in the pool)."""
    out = np.empty(len(sample), dtype=np.float32)
    for start in range(0, len(sample), 500):
        sims = sample[start : start + 500] @ pool.T
        if sample_rows is not None:
            rows = sample_rows[start : start + 500]
            sims[np.arange(len(rows)), rows] = -np.inf
        out[start : start + 500] = sims.max(axis=1)
    return out


@dataclass(frozen=True)
class NoiseModel:
    """Gaussian noise per dimension whose expected cosine between a noisy copy and its original equals
    the median similarity of a real chunk to its nearest real neighbour."""

    real_nn_median: float
    real_nn_p05: float
    real_nn_p95: float
    sigma: float

    @classmethod
    def calibrate(cls, real: Vectors, rng: np.random.Generator, sample: int = 2_000) -> NoiseModel:
        rows = rng.choice(len(real), size=min(sample, len(real)), replace=False)
        nearest = nearest_similarity(real[rows], real, rows)
        median = float(np.median(nearest))
        # |v + noise| ~ sqrt(1 + d sigma^2) for a unit v, so cos(v, v + noise) ~ 1 / sqrt(1 + d sigma^2)
        sigma = math.sqrt(max(1.0 / median**2 - 1.0, 0.0) / DIMENSIONS)
        p05, p95 = np.percentile(nearest, [5, 95])
        return cls(median, float(p05), float(p95), sigma)

    def as_dict(self) -> dict[str, float]:
        return {
            "real_nearest_neighbour_cosine_median": round(self.real_nn_median, 4),
            "real_nearest_neighbour_cosine_p05": round(self.real_nn_p05, 4),
            "real_nearest_neighbour_cosine_p95": round(self.real_nn_p95, 4),
            "noise_sigma_per_dimension": round(self.sigma, 5),
        }


def synthetic_vectors(
    real: Vectors, count: int, noise: NoiseModel, rng: np.random.Generator
) -> tuple[Vectors, npt.NDArray[np.int64]]:
    """``count`` unit vectors, each a real vector (round robin, so every real chunk gets the same number of
    copies) plus Gaussian noise, renormalised; and the row of each one's original."""
    parents = np.arange(count, dtype=np.int64) % len(real)
    out = np.empty((count, DIMENSIONS), dtype=np.float32)
    for start in range(0, count, 10_000):
        rows = parents[start : start + 10_000]
        block = real[rows] + noise.sigma * rng.standard_normal((len(rows), DIMENSIONS), dtype=np.float32)
        out[start : start + len(rows)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out, parents


def synthetic_check(
    real: Vectors, synthetic: Vectors, parents: npt.NDArray[np.int64], rng: np.random.Generator, sample: int = 1_000
) -> dict[str, float]:
    """How close the synthetic vectors came out: to their original, and to their nearest neighbour among
    all vectors of the index (real and synthetic)."""
    rows = rng.choice(len(synthetic), size=min(sample, len(synthetic)), replace=False)
    to_parent = np.einsum("ij,ij->i", synthetic[rows], real[parents[rows]])
    pool = np.vstack([real, synthetic])
    nearest = nearest_similarity(synthetic[rows], pool, rows + len(real))
    real_rows = rng.choice(len(real), size=min(sample, len(real)), replace=False)
    real_nearest = nearest_similarity(real[real_rows], pool, real_rows)
    return {
        "synthetic_to_original_cosine_median": round(float(np.median(to_parent)), 4),
        "synthetic_nearest_neighbour_cosine_median": round(float(np.median(nearest)), 4),
        "real_nearest_neighbour_cosine_median_with_synthetic": round(float(np.median(real_nearest)), 4),
    }
