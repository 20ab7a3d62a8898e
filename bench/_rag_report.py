"""What bench/rag.py prints: the index build, retrieval per index size (HNSW against exact search), the
end-to-end query latency (API against the chain in-process) and the targets, from the report that also
goes to JSON."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
if not console.is_terminal:
    console = Console(width=170)  # a log file or a pipe: do not squeeze the tables to 80 columns

TARGETS = {
    "retrieval_p95_ms_at_100k": 50.0,
    "recall_at_10_at_100k": 0.95,
    "api_query_p95_ms": 300.0,
}
TARGET_SIZE = 100_000


def human(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 and n >= 1000 else f"{n:,}"


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}x" if value is not None and base else "-"


def short_plan(plan: str | None) -> str:
    """'Limit > Index Scan using chunks_embedding_hnsw' -> 'HNSW index', and so on."""
    if not plan:
        return "-"
    if "chunks_embedding_hnsw" in plan:
        return "HNSW index"
    if "Seq Scan" in plan:
        return ("parallel " if "Gather" in plan else "") + "seq scan + sort"
    return plan


def _headline(size: dict[str, Any], ef_search: int) -> dict[str, Any] | None:
    return next((run for run in size["retrieval"]["hnsw"] if run["ef_search"] == ef_search), None)


def targets(report: dict[str, Any]) -> dict[str, Any]:
    """Met / not met per target; a target whose size or step did not run is left unjudged (None)."""
    ef = report["settings"]["ef_search"]
    at = next((s for s in report["sizes"] if s["chunks"] == TARGET_SIZE), None)
    run = _headline(at, ef) if at else None
    api = report.get("e2e", {}).get("api")
    return {
        "retrieval_p95_ms_at_100k": {
            "value": run["latency_ms"]["p95"] if run else None,
            "met": run["latency_ms"]["p95"] < TARGETS["retrieval_p95_ms_at_100k"] if run else None,
        },
        "recall_at_10_at_100k": {
            "value": run["recall_at_k"] if run else None,
            "met": run["recall_at_k"] >= TARGETS["recall_at_10_at_100k"] if run else None,
        },
        "api_query_p95_ms": {
            "value": api["client_ms"]["p95"] if api else None,
            "met": api["client_ms"]["p95"] < TARGETS["api_query_p95_ms"] if api else None,
        },
    }


def _verdict(target: dict[str, Any]) -> str:
    if target["met"] is None:
        return "[dim]not run[/]"
    return "[green]met[/]" if target["met"] else "[red]not met[/]"


def print_report(report: dict[str, Any]) -> None:
    info, settings = report["machine"], report["settings"]
    console.print()
    console.print(
        "[bold]RAG benchmark[/]: index build, retrieval (pgvector HNSW vs exact) and POST /v1/rag/query, "
        f"schema {settings['schema']}",
        highlight=False,
    )
    console.print(
        f"machine: {info['logical_cpus']} logical CPUs, {info['memory_gib']} GiB; load average "
        f"{info['load_average_at_start'][0]} at start, {report['load_average_at_end'][0]} at end | model "
        f"{settings['embedding_model']}, indexing on {settings['index_threads']} threads | HNSW "
        f"m={settings['hnsw_m']}, ef_construction={settings['hnsw_ef_construction']} (bulk builds; the store's: "
        f"m={settings['store_hnsw']['m']}, ef_construction={settings['store_hnsw']['ef_construction']}), "
        f"ef_search={settings['ef_search']} (settings) | "
        f"corpus: {report['corpus']['claims']:,} simulated claims ({report['corpus']['transactions']:,} transactions, "
        f"seed {report['corpus']['seed']}), {report['queries']['count']} questions",
        style="dim",
        highlight=False,
    )
    _print_builds(report)
    _print_retrieval(report)
    _print_e2e(report)
    _print_notes(report)
    judged = report["targets"]
    console.print(
        f"Targets: retrieval p95 < {TARGETS['retrieval_p95_ms_at_100k']:.0f} ms at 100k "
        f"({_fmt(judged['retrieval_p95_ms_at_100k']['value'], ' ms')}) {_verdict(judged['retrieval_p95_ms_at_100k'])}; "
        f"recall@10 >= {TARGETS['recall_at_10_at_100k']} at 100k ({_fmt(judged['recall_at_10_at_100k']['value'])}) "
        f"{_verdict(judged['recall_at_10_at_100k'])}; POST /v1/rag/query p95 < {TARGETS['api_query_p95_ms']:.0f} ms "
        f"({_fmt(judged['api_query_p95_ms']['value'], ' ms')}) {_verdict(judged['api_query_p95_ms'])}",
        highlight=False,
    )


def _cores(figures: dict[str, Any]) -> str:
    return f"{figures['cores']:.2f} / {figures['postgres_cores']:.2f} / {figures['others_cores']:.2f}"


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.1f}{unit}" if unit else f"{value:.3f}"


def _print_builds(report: dict[str, Any]) -> None:
    table = Table(title="Index build: claim documents -> chunks -> MiniLM -> pgvector (index_documents)")
    columns = ("chunks", "embedded", "embed s", "embed chunks/s", "build s", "build chunks/s", "vs embedding alone")
    for column in columns:
        table.add_column(column, justify="right")
    table.add_column("peak PSS (RSS) GiB", justify="right")
    table.add_column("cores: this / PostgreSQL / others", justify="right")
    for size in report["sizes"]:
        build = size.get("build")
        if not build:
            continue
        table.add_row(
            human(size["chunks"]),
            f"{build['embedded']:,}",
            f"{build['embed_seconds']:.1f}",
            f"{build['chunks_per_second']:.1f}",
            f"{build['seconds']:.1f}",
            f"{build['build_chunks_per_second']:.1f}",
            _ratio(build["build_chunks_per_second"], build["chunks_per_second"]),
            f"{build['usage']['peak_pss_gib']:.2f} ({build['usage']['peak_rss_gib']:.2f})",
            _cores(build["usage"]),
        )
    console.print(table)
    console.print(
        "embed = MiniLM (int8 ONNX) over the chunk texts; build = index_documents end to end: chunking, the diff "
        "against the index, embedding, and one transaction of row upserts with HNSW inserts (pgvector). "
        "'vs embedding alone' = build chunks/s / embed chunks/s: the share of the build the embedding is. "
        "cores = CPU seconds per second of this process, of the PostgreSQL server (all its processes), and of "
        "the rest of the machine (near 0 on a quiet machine).",
        style="dim",
        highlight=False,
    )


def _print_retrieval(report: dict[str, Any]) -> None:
    ef = report["settings"]["ef_search"]
    k = report["queries"]["k"]
    table = Table(title=f"Retrieval: top {k} for {report['queries']['count']} question vectors, one at a time")
    for column in (
        "index",
        "PgVectorStore.search",
        "queries",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "p50 vs exact",
        "p95 vs exact",
    ):
        table.add_column(column, justify="left" if column in ("index", "PgVectorStore.search") else "right")
    table.add_column(f"recall@{k}", justify="right")
    table.add_column("cosine shortfall", justify="right")
    table.add_column("plan", justify="left")
    for size in report["sizes"]:
        label = f"{human(size['chunks'])}: {human(size['real'])} real"
        label += f" + {human(size['synthetic'])} synthetic" if size["synthetic"] else ""
        retrieval = size["retrieval"]
        base = retrieval["exact_numpy"]["latency_ms"]
        rows: list[tuple[str, dict[str, Any]]] = [("exact in numpy (baseline)", retrieval["exact_numpy"])]
        if retrieval.get("hnsw_as_indexed"):
            rows.append((f"index as inserted, ef {ef}", retrieval["hnsw_as_indexed"]))
        for run in retrieval["hnsw"]:
            name = f"bulk-built index, ef {run['ef_search']}"
            rows.append((f"[bold]{name}[/]" if run["ef_search"] == ef else name, run))
        if retrieval.get("exact_sql"):
            rows.append(("exact in PostgreSQL", retrieval["exact_sql"]))
        for name, run in rows:
            latency = run["latency_ms"]
            table.add_row(
                label,
                name,
                str(run["queries"]),
                f"{latency['p50']:.2f}",
                f"{latency['p95']:.2f}",
                f"{latency['p99']:.2f}",
                _ratio(latency["p50"], base["p50"]),
                _ratio(latency["p95"], base["p95"]),
                f"{run['recall_at_k']:.3f}",
                f"{run['cosine_shortfall']:.4f}",
                short_plan(run.get("plan")),
            )
            label = ""
        table.add_section()
    console.print(table)
    for size in report["sizes"]:
        build, disk, exact = size["hnsw_build"], size["disk"], size["retrieval"]["exact_numpy"]
        notices = f"; notices: {'; '.join(build['notices'])}" if build["notices"] else ""
        load = size.get("synthetic_load")
        loaded = f"COPY of {load['rows']:,} synthetic rows {load['seconds']:.1f} s; " if load else ""
        console.print(
            f"{human(size['chunks'])}: exact neighbours (medians): {k}th cosine {exact['topk_cosine_median']}, 1st - "
            f"{k}th {exact['top1_minus_topk_cosine_median']}, {k}th - {k + 1}th "
            f"{exact['topk_minus_next_cosine_median']}; "
            f"{loaded}HNSW build {build['seconds']:.1f} s (maintenance_work_mem "
            f"{build['maintenance_work_mem']}, {build['max_parallel_maintenance_workers']} parallel workers{notices}); "
            f"index {disk['hnsw_index_bytes'] / 2**20:.0f} MiB, table with indexes "
            f"{disk['table_with_indexes_bytes'] / 2**20:.0f} MiB; peak PSS (RSS) of this process while searching "
            f"{size['usage']['peak_pss_gib']:.2f} ({size['usage']['peak_rss_gib']:.2f}) GiB, cores this / "
            f"PostgreSQL / others {_cores(size['usage'])}; lowest ef_search with recall@{k} >= 0.95 "
            "on the HNSW index: "
            f"{size['lowest_ef_for_recall'] or 'none of those run'}",
            highlight=False,
        )


def _print_e2e(report: dict[str, Any]) -> None:
    e2e = report.get("e2e")
    if not e2e:
        return
    table = Table(
        title=f"End to end over the {human(e2e['chunks'])}-chunk index: {e2e['requests']} questions, sequential, "
        f"k={e2e['k']}, {e2e['answerer']} answer step"
    )
    columns: tuple[str, ...] = ("path", "p50 ms", "p95 ms", "p99 ms", "p50 vs chain", "p95 vs chain")
    columns += ("retrieve p50/p95 ms", "answer p50/p95 ms", "answer has expected", "cores: this / PG / others")
    for column in columns:
        table.add_column(column, justify="left" if column == "path" else "right")
    base = e2e["in_process"]["client_ms"]
    paths = (
        ("RagChain.ask in-process, before the first ANALYZE", "before_analyze"),
        ("RagChain.ask in-process (baseline)", "in_process"),
        ("[bold]POST /v1/rag/query (uvicorn)[/]", "api"),
    )
    for name, key in paths:
        run = e2e.get(key)
        if not run:
            continue
        latency = run["client_ms"]
        table.add_row(
            name,
            f"{latency['p50']:.1f}",
            f"{latency['p95']:.1f}",
            f"{latency['p99']:.1f}",
            _ratio(latency["p50"], base["p50"]),
            _ratio(latency["p95"], base["p95"]),
            f"{run['retrieve_ms']['p50']:.1f} / {run['retrieve_ms']['p95']:.1f}",
            f"{run['answer_ms']['p50']:.1f} / {run['answer_ms']['p95']:.1f}",
            f"{run['contains_expected_share']:.0%}",
            _cores(run["usage"]),
        )
        if key == "before_analyze":
            table.add_section()
    console.print(table)
    fresh, chain, api = e2e.get("before_analyze"), e2e["in_process"]["usage"], e2e["api"]["usage"]
    before = (
        f"Before the first ANALYZE (the table as index_documents left it; analyzed at start "
        f"{fresh['analyzed_at_start']}, at end {fresh['analyzed_at_end']}) a question naming a key runs "
        f"identifier_search as '{fresh.get('identifier_plan', '-')}'; after ANALYZE "
        f"({e2e['analyze_seconds']:.2f} s) as '{e2e['in_process'].get('identifier_plan', '-')}'. "
        if fresh
        else ""
    )
    console.print(
        "Latency from before the call (request) to its answer (parsed reply). retrieve/answer = the chain's own "
        "timings (the API's timings_ms): retrieve = question embedding + identifier (full-text) search + HNSW "
        "search; answer = the extractive step (sentence embeddings, cached). " + before + "Peak PSS (RSS) GiB: "
        f"in-process {chain['peak_pss_gib']:.2f} ({chain['peak_rss_gib']:.2f}), with the server "
        f"{api['peak_pss_gib']:.2f} ({api['peak_rss_gib']:.2f}).",
        style="dim",
        highlight=False,
    )


def _print_notes(report: dict[str, Any]) -> None:
    synthetic = report.get("synthetic")
    if synthetic:
        noise, check = synthetic["noise"], synthetic["check"]
        console.print(
            "[yellow]Synthetic vectors[/]: the larger indexes hold the real chunks plus synthetic vectors, each a "
            "real chunk's vector (round robin) + Gaussian noise, renormalised, not embeddings of text. Noise sigma "
            f"{noise['noise_sigma_per_dimension']} per dimension, chosen so a copy's cosine to its original equals "
            "the median cosine of a real chunk to its nearest real neighbour "
            f"({noise['real_nearest_neighbour_cosine_median']}; "
            f"p05-p95 {noise['real_nearest_neighbour_cosine_p05']}-{noise['real_nearest_neighbour_cosine_p95']}). "
            f"Measured: copy to original {check['synthetic_to_original_cosine_median']}, a copy's nearest "
            f"neighbour {check['synthetic_nearest_neighbour_cosine_median']}, a real chunk's nearest neighbour "
            f"{check['real_nearest_neighbour_cosine_median_with_synthetic']} (medians). `--real` embeds every "
            "chunk instead.",
            highlight=False,
        )
    queries = report["queries"]
    console.print(
        f"Questions: {queries['count']} from mdslab.llm.questions.build_questions over the real claims "
        f"({', '.join(f'{n} {c}' for c, n in queries['categories'].items())}); embedded once "
        f"({queries['embed_ms_per_question']:.1f} ms each), searches reuse the vectors. Exact = true top "
        f"{queries['k']} by cosine over the same vectors as the index holds (read back from it); recall = the "
        "share of it HNSW returned; cosine shortfall = mean cosine of the exact top 10 minus that of the returned "
        "10 (0: as close as the true neighbours, whichever chunks they are). "
        "Every search goes through PgVectorStore.search (SQL round trip included); the baseline is in this process.",
        style="dim",
        highlight=False,
    )
