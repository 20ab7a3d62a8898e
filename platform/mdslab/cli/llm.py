"""Commands of the AI/LLM deep dive: build and evaluate the RAG index, ask it, run the deep dive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from mdslab.cli.context import console, one_line_errors, settings

rag_app = typer.Typer(help="The RAG index over the curated lake and your documents (pgvector).", no_args_is_help=True)


def _progress(what: str) -> Progress:
    return Progress(
        TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console, transient=True
    )


@rag_app.command("index")
@one_line_errors
def index(
    docs: Annotated[
        list[Path] | None,
        typer.Option(
            "--docs", exists=True, help="A folder (or file) of Markdown/text to index as well; repeat for more."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Index the curated tables (claims with adjuster notes, customer and merchant summaries, the table
    catalog) and any --docs folders into pgvector. Incremental: only new or changed chunks are embedded,
    chunks whose rows or sections are gone are removed, and each change makes a new index version."""
    from mdslab.llm.operations import index_lake
    from mdslab.workloads.lake import lakehouse

    current = settings()
    with _progress("embedding chunks") as progress:
        task = progress.add_task("embed", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = index_lake(current, lakehouse(current), docs=docs or [], on_progress=update)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    version = f"index version {report.version}" if report.version else "nothing changed, index version unchanged"
    console.print(
        f"{report.chunks:,} chunks from {report.documents:,} documents: {report.embedded:,} embedded"
        + (f" ({report.chunks_per_second:,.0f} chunks/s)" if report.embedded else "")
        + f", {report.relabelled:,} relabelled, {report.removed:,} removed, {report.unchanged:,} unchanged; "
        f"{version}; {report.total_chunks:,} chunks in the index ({report.seconds:.1f} s).",
        highlight=False,
    )


@rag_app.command("status")
@one_line_errors
def rag_status() -> None:
    """The index's version, size and what it holds by source, and the tables it is behind on."""
    from mdslab.llm.chain import open_store
    from mdslab.llm.freshness import indexed_table_versions, stale_sources
    from mdslab.workloads.lake import lakehouse

    current = settings()
    store = open_store(current)
    try:
        version = store.version()
        if version is None:
            console.print("The RAG index is empty: build it with `mdslab rag index [--docs PATH]`.")
            return
        rows = store.summary()
    finally:
        store.close()
    table = Table("kind", "source", "chunks", "table version", title=f"RAG index version {version.version}")
    for kind, source, count, table_version in rows:
        table.add_row(kind, escape(str(source)), f"{count:,}", "" if table_version is None else str(table_version))
    console.print(table)
    console.print(
        f"{version.chunks:,} chunks, model {version.embedding_model}; last run {version.created_at:%Y-%m-%d %H:%M} "
        f"UTC embedded {version.embedded:,}, relabelled {version.relabelled:,}, removed {version.removed:,}.",
        highlight=False,
    )
    for stale in stale_sources(indexed_table_versions(current) or {}, lakehouse(current)):
        console.print(f"[yellow]stale[/] {stale.line()}", highlight=False)


@rag_app.command("eval")
@one_line_errors
def rag_eval(
    k: Annotated[
        int | None, typer.Option("-k", min=1, max=50, help="Chunks retrieved (default MDSLAB_RAG__TOP_K).")
    ] = None,
    gate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Fail (exit 1) when hit@k falls below this.")] = 0.8,
    per_kind: Annotated[int, typer.Option(min=1, help="Questions per kind of fact.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Ask the known-facts question set (from the simulator's claims, the summaries, the catalog and the
    indexed documents), measure hit@1, hit@k, MRR, answer containment and latency, and log the run to
    MLflow (experiment mdslab-rag-eval) with the index version."""
    from mdslab.llm.chain import build_chain
    from mdslab.llm.operations import evaluate_index
    from mdslab.workloads.lake import lakehouse

    current = settings()
    chain = build_chain(current)
    try:
        with _progress("asking") as progress:
            task = progress.add_task("ask", total=None)
            report = evaluate_index(
                current, lakehouse(current), chain, k=k, gate_hit_at_k=gate, per_kind=per_kind,
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            )  # fmt: skip
    finally:
        chain.store.close()
    summary = report.as_dict()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        table = Table("category", "questions", "hit@1", f"hit@{report.k}", "MRR", "containment", "p95 ms")
        for category, m in summary["by_category"].items():
            table.add_row(
                category, str(m["questions"]), f"{m['hit_at_1']:.2f}", f"{m[f'hit_at_{report.k}']:.2f}",
                f"{m['mrr']:.2f}", f"{m['containment']:.2f}", f"{m['latency_p95_ms']:.0f}",
            )  # fmt: skip
        m = summary["metrics"]
        table.add_row(
            "all", str(summary["questions"]), f"{m['hit_at_1']:.2f}", f"{m[f'hit_at_{report.k}']:.2f}",
            f"{m['mrr']:.2f}", f"{m['containment']:.2f}", f"{m['latency_p95_ms']:.0f}", style="bold",
        )  # fmt: skip
        console.print(table)
        console.print(
            f"index version {report.index_version}; MLflow run {report.run_id} (experiment mdslab-rag-eval, "
            "`mdslab mlflow ui`)",
            highlight=False,
        )
    if not report.passed:
        console.print(f"gate failed: hit@{report.k} {report.metrics()[f'hit_at_{report.k}']:.2f} < {gate}", style="red")
        raise typer.Exit(1)


@one_line_errors
def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    k: Annotated[
        int | None, typer.Option("-k", min=1, max=50, help="Chunks retrieved (default MDSLAB_RAG__TOP_K).")
    ] = None,
    table: Annotated[str | None, typer.Option(help="Only chunks of this table, e.g. silver.claims.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print answer, citations and timings as JSON.")] = False,
) -> None:
    """Ask the lake a question: a grounded answer with numbered citations (table, version and row key,
    or file and heading). Build the index first with `mdslab rag index`."""
    from mdslab.llm.chain import build_chain
    from mdslab.llm.store import RetrievalFilter

    text = question.strip()
    if not text or len(text) > 2000:
        raise typer.BadParameter("the question must have 1 to 2,000 characters", param_hint="QUESTION")
    current = settings()
    chain = build_chain(current)
    try:
        answer = chain.ask(text, k=k, where=RetrievalFilter(table=table) if table else None)
    finally:
        chain.store.close()
    if as_json:
        typer.echo(json.dumps(answer.as_dict(), indent=2, default=str))
        return
    console.print(escape(answer.answer), highlight=False)
    console.print()
    for citation in answer.citations:
        console.print(f"[{citation.number}] {escape(citation.source)}", highlight=False, style="dim")
    console.print(
        f"retrieve {answer.retrieve_ms:.0f} ms, answer {answer.answer_ms:.0f} ms ({answer.answerer}, index "
        f"version {answer.index_version})",
        style="dim",
        highlight=False,
    )


@one_line_errors
def run_llm(
    docs: Annotated[
        list[Path] | None,
        typer.Option("--docs", exists=True, help="Document folders to index as well (default: ./docs if it exists)."),
    ] = None,
    rows: Annotated[
        int, typer.Option("--rows", "-n", min=5_000, help="Transactions to simulate if the lake has no claims.")
    ] = 50_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """The AI/LLM deep dive: curated tables + docs -> pgvector -> evaluation in MLflow -> the RAG endpoint
    and the OpenAI-compatible gateway. Walkthrough: docs/deep-dives/ai-llm-mlops.md."""
    from mdslab.api.server import serving_app
    from mdslab.cli.services import ensure_services
    from mdslab.llm.deep_dive import run_llm as run

    folders = docs if docs is not None else [p for p in (Path("docs"),) if p.is_dir()]
    current = settings()
    with console.status("starting services") as status:
        ensure_services(current, on_step=status.update, quiet=True)
        current = settings()
        report = run(current, serve_api=serving_app, docs=folders, rows=rows, on_progress=status.update)
    summary = report.as_dict()
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    indexed, evaluation = report.indexed, summary["evaluation"]
    console.print(
        f"index: {indexed.total_chunks:,} chunks, version {indexed.version or 'unchanged'} "
        f"({indexed.embedded:,} embedded, {indexed.removed:,} removed)",
        highlight=False,
    )
    m, k = evaluation["metrics"], evaluation["k"]
    console.print(
        f"evaluation: {evaluation['questions']} questions, hit@1 {m['hit_at_1']:.2f}, hit@{k} {m[f'hit_at_{k}']:.2f}, "
        f"MRR {m['mrr']:.2f}, containment {m['containment']:.2f}, p95 {m['latency_p95_ms']:.0f} ms "
        f"(MLflow run {evaluation['run_id']})",
        highlight=False,
    )
    console.print(f"POST /v1/rag/query: {escape(summary['rag_query']['answer'])}", highlight=False)
    console.print(f"gateway (ChatOpenAI, model mdslab-rag): {escape(report.gateway_answer)}", highlight=False)
