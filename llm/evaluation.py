"""``mdslab rag eval``: retrieval and answer quality on the known-facts question set, logged to MLflow.

Metrics: hit@1 and hit@k (a relevant source among the first k retrieved), MRR, answer containment
(the expected phrase is in the answer) and latency percentiles, overall and per question category.
The run records the index version, so a quality change can be traced to the index that caused it; a
gate on hit@k turns the evaluation into a check that a pipeline can fail on.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from mlflow import MlflowClient

from mdslab.llm.chain import RagAnswer, RagChain
from mdslab.llm.embeddings import MODEL_ID
from mdslab.llm.questions import Question, source_key
from mdslab.settings import Settings
from mdslab.tracking import experiment_id

if TYPE_CHECKING:
    from matplotlib.figure import Figure

EXPERIMENT = "mdslab-rag-eval"


@dataclass(frozen=True)
class QuestionResult:
    question: Question
    rank: int | None  # 1-based rank of the first relevant chunk, None when none was retrieved
    contained: bool
    sources: list[str]
    answer: str
    total_ms: float
    retrieve_ms: float
    answer_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "question": self.question.text,
            "category": self.question.category,
            "expect": self.question.expect,
            "relevant": sorted(self.question.relevant)[:20],
            "rank": self.rank,
            "contained": self.contained,
            "answer": self.answer,
            "sources": self.sources,
            "ms": {
                "total": round(self.total_ms, 2),
                "retrieve": round(self.retrieve_ms, 2),
                "answer": round(self.answer_ms, 2),
            },
        }


@dataclass(frozen=True)
class EvalReport:
    results: list[QuestionResult]
    k: int
    index_version: int
    run_id: str | None
    gate_hit_at_k: float

    def metrics(self, results: Sequence[QuestionResult] | None = None) -> dict[str, float]:
        rows = self.results if results is None else results
        if not rows:
            return {}
        latency = np.array([r.total_ms for r in rows])
        return {
            "hit_at_1": float(np.mean([r.rank == 1 for r in rows])),
            f"hit_at_{self.k}": float(np.mean([r.rank is not None for r in rows])),
            "mrr": float(np.mean([1.0 / r.rank if r.rank else 0.0 for r in rows])),
            "containment": float(np.mean([r.contained for r in rows])),
            "latency_p50_ms": float(np.percentile(latency, 50)),
            "latency_p95_ms": float(np.percentile(latency, 95)),
            "retrieve_p95_ms": float(np.percentile([r.retrieve_ms for r in rows], 95)),
            "answer_p95_ms": float(np.percentile([r.answer_ms for r in rows], 95)),
        }

    def by_category(self) -> dict[str, dict[str, float]]:
        categories = sorted({r.question.category for r in self.results})
        return {c: self.metrics([r for r in self.results if r.question.category == c]) for c in categories}

    @property
    def passed(self) -> bool:
        return self.metrics().get(f"hit_at_{self.k}", 0.0) >= self.gate_hit_at_k

    def as_dict(self) -> dict[str, Any]:
        return {
            "questions": len(self.results),
            "k": self.k,
            "index_version": self.index_version,
            "run_id": self.run_id,
            "metrics": {name: round(value, 4) for name, value in self.metrics().items()},
            "by_category": {
                c: {"questions": sum(r.question.category == c for r in self.results)}
                | {name: round(v, 4) for name, v in m.items()}
                for c, m in self.by_category().items()
            },
            "gate": {f"hit_at_{self.k}": self.gate_hit_at_k, "passed": self.passed},
        }


def first_relevant_rank(answer: RagAnswer, question: Question) -> int | None:
    for rank, document in enumerate(answer.retrieved, start=1):
        m = document.metadata
        if source_key(m.get("table"), m.get("row_key"), m.get("file"), m.get("heading")) in question.relevant:
            return rank
    return None


def evaluate(
    chain: RagChain,
    questions: Sequence[Question],
    *,
    k: int,
    on_progress: Callable[[int, int], None] = lambda _done, _total: None,
) -> list[QuestionResult]:
    results = []
    for done, question in enumerate(questions, start=1):
        started = time.perf_counter()
        answer = chain.ask(question.text, k=k)
        total_ms = (time.perf_counter() - started) * 1000
        results.append(
            QuestionResult(
                question=question,
                rank=first_relevant_rank(answer, question),
                contained=question.contained_in(answer.answer),
                sources=[d.metadata["source"] for d in answer.retrieved],
                answer=answer.answer,
                total_ms=total_ms,
                retrieve_ms=answer.retrieve_ms,
                answer_ms=answer.answer_ms,
            )
        )
        on_progress(done, len(questions))
    return results


def quality_figure(report: EvalReport) -> Figure:
    """hit@k, MRR and containment per question category: the plot the MLflow run keeps. A plain
    ``Figure`` (no pyplot), so drawing it changes no backend of the process (a notebook keeps its plots)."""
    from matplotlib.figure import Figure

    categories = report.by_category()
    names = list(categories)
    x = np.arange(len(names))
    figure = Figure(figsize=(max(6, 1.3 * len(names)), 4))
    axes = figure.subplots()
    for offset, metric in ((-0.2, f"hit_at_{report.k}"), (0.0, "mrr"), (0.2, "containment")):
        axes.bar(x + offset, [categories[n][metric] for n in names], width=0.2, label=metric)
    axes.set_xticks(x, names, rotation=20, ha="right")
    axes.set_ylim(0, 1.22)  # headroom above 1.0 for the legend: it never covers a bar
    axes.set_yticks(np.linspace(0, 1, 6))
    axes.set_title(f"RAG evaluation, index version {report.index_version}")
    axes.legend(loc="upper center", ncol=3, frameon=False)
    figure.tight_layout()
    return figure


def log_to_mlflow(client: MlflowClient, settings: Settings, report: EvalReport, *, chunks: int, answerer: str) -> str:
    """One MLflow run: parameters that identify the index and chain, metrics, per-question results, a plot."""
    run = client.create_run(
        experiment_id(client, settings, EXPERIMENT), run_name=f"rag-eval-index-v{report.index_version}"
    )
    run_id = run.info.run_id
    params = {
        "index_version": report.index_version,
        "embedding_model": MODEL_ID,
        "chunks": chunks,
        "top_k": report.k,
        "answerer": answerer,
        "ef_search": settings.rag.ef_search,
        "questions": len(report.results),
    }
    for name, value in params.items():
        client.log_param(run_id, name, value)
    client.set_tag(run_id, "mdslab.rag.index_version", str(report.index_version))
    for name, value in report.metrics().items():
        client.log_metric(run_id, name, value)
    for category, metrics in report.by_category().items():
        for name, value in metrics.items():
            client.log_metric(run_id, f"{category}.{name}", value)
    client.log_metric(run_id, "gate_passed", float(report.passed))
    with tempfile.TemporaryDirectory() as folder:
        results = Path(folder) / "results.json"
        results.write_text(json.dumps([r.as_dict() for r in report.results], indent=2))
        client.log_artifact(run_id, str(results))
        plot = Path(folder) / "quality_by_category.png"
        quality_figure(report).savefig(plot, dpi=110)
        client.log_artifact(run_id, str(plot))
    client.set_terminated(run_id)
    return str(run_id)
