"""What bench/ingest.py prints: the targets and their verdicts, and the tables (throughput, latency,
freshness, CPU and memory per process), from the report that also goes to JSON."""

from __future__ import annotations

from typing import Any

from _harness import console, note, num, ratio, table, title, verdict

TARGETS = {"batch_end_to_end_events_per_s": 20_000, "rate_p99_ms": 50.0, "rate_req_per_s": 500, "freshness_p95_s": 5.0}
ROLES = {"client": "script", "api": "API", "consumer": "consumer", "kafka": "Kafka", "s3": "S3"}


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Met / not met per target; judged at the target's rate only (another --rate is shown, not judged)."""
    steps = report["steps"]
    batch = steps.get("batch", {})
    batch_rate = batch.get("end_to_end_events_per_s")
    rates = steps.get("rates") or [{}]
    judged = next((run for run in rates if run.get("rate") == TARGETS["rate_req_per_s"]), rates[0])
    rate, p99 = judged.get("rate"), judged.get("latency_ms", {}).get("p99")
    at_target = rate == TARGETS["rate_req_per_s"]
    found = [
        {
            "target": f">= {TARGETS['batch_end_to_end_events_per_s']:,} events/s end to end with batch POSTs",
            "measured": f"{batch_rate:,} events/s" if batch_rate else "-",
            "met": None if batch_rate is None else batch_rate >= TARGETS["batch_end_to_end_events_per_s"],
        },
        {
            "target": f"single-event p99 < {TARGETS['rate_p99_ms']:.0f} ms at {TARGETS['rate_req_per_s']} req/s",
            "measured": f"{p99:,.1f} ms at {rate:.0f} req/s" if p99 is not None and rate else "-",
            "met": None if p99 is None or not at_target else p99 < TARGETS["rate_p99_ms"],
        },
    ]
    for label, step, judge in (
        (f"at {rate or 0:.0f} req/s", judged, at_target),
        ("batch POSTs, full speed", batch, True),
    ):
        p95 = step.get("freshness", {}).get("event_to_queryable_s", {}).get("p95")
        found.append(
            {
                "target": f"freshness p95 < {TARGETS['freshness_p95_s']:.0f} s ({label})",
                "measured": f"{p95:,.2f} s" if p95 is not None else "-",
                "met": None if p95 is None or not judge else p95 < TARGETS["freshness_p95_s"],
            }
        )
    return found


def print_report(report: dict[str, Any]) -> None:
    steps, stream = report["steps"], report["settings"]["stream"]
    title(
        "[bold]Ingest benchmark[/]: HTTP API -> Kafka -> stream consumer -> bronze.transactions, everything on "
        "this host",
        report,
        f"{report['settings']['partitions']} partitions per topic | consumer micro-batch: "
        f"{stream['batch_max_messages']:,} messages or {stream['batch_max_seconds']} s | API: 1 uvicorn worker",
    )
    print_throughput(steps)
    print_latency(steps)
    print_freshness(steps)
    rows = [[target["target"], target["measured"], verdict(target["met"])] for target in report["targets"]]
    table("Targets (2 cores)", ("target", "measured", "verdict"), rows)
    print_processes(report["processes"]["phases"])
    if check := report.get("bronze_check"):
        console.print(
            f"bronze holds every accepted event exactly once: {'[green]yes' if check['exactly_once'] else '[red]NO'}[/]"
            f" ({check['bronze_rows']:,} rows, {check['distinct_event_ids']:,} distinct event ids, "
            f"{check['accepted']:,} accepted, {check['missing']:,} missing, {check['unexpected']:,} unexpected)",
            highlight=False,
        )
    note("How to read it: bench/README.md, `bench/ingest.py`. All clocks are this host's.")


def print_throughput(steps: dict[str, Any]) -> None:
    ceiling = steps.get("ceiling", {}).get("events_per_s")
    rows: list[list[str] | None] = []
    if step := steps.get("ceiling"):
        figures = [num(step["acknowledged"]), num(step["seconds"], 2), num(step["events_per_s"])]
        rows.append(["raw producer -> Kafka acked (ceiling)", *figures, "1.00x", "-", num(step["failed"])])
    runs = [("batch POSTs", steps.get("batch")), ("single POSTs", steps.get("single"))]
    for label, step in [*runs, *(("fixed rate", run) for run in steps.get("rates", []))]:
        if not step:
            continue
        closed, accepted, per_s = "batch_size" in step, num(step["accepted_events"]), step["accepted_events_per_s"]
        shape = f"{step['batch_size']}/request, {step['clients']} clients" if closed else f"{step['rate']:.0f} req/s"
        shape += "" if closed else " scheduled"
        requests_per_s = num(step.get("achieved_requests_per_s", step["requests_per_s"]), 1)
        figures = [num(step["accept_seconds"], 2), num(per_s), ratio(per_s or None, ceiling), requests_per_s]
        rows += [None, [f"{label} ({shape}): API 202", accepted, *figures, num(sum(step["errors"].values()))]]
        if closed:
            end_to_end = step.get("end_to_end_events_per_s")
            figures = [num(step.get("end_to_end_seconds"), 2), num(end_to_end), ratio(end_to_end or None, ceiling)]
            lag = "" if step["caught_up"] else "[red]not caught up[/]"
            rows.append([f"{label}: end to end into bronze", accepted, *figures, "", lag])
    table("Throughput", ("step", "events", "seconds", "events/s", "vs raw producer", "requests/s", "errors"), rows)


def print_latency(steps: dict[str, Any]) -> None:
    rows: list[list[str] | None] = []

    def add(label: str, figures: dict[str, float] | None, count: int | None) -> None:
        if figures:
            rows.append([label, *(f"{figures[key]:,.1f}" for key in ("p50", "p95", "p99", "max")), num(count)])

    raws = {run["rate"]: run for run in steps.get("raw_rates", [])}
    for run in steps.get("rates", []):
        add(f"single POST at {run['rate']:.0f} req/s, from scheduled send", run["latency_ms"], run["requests"])
        add("  of which waiting to be sent (client lag)", run.get("send_lag_ms"), run["requests"])
        if raw := raws.pop(run["rate"], None):
            add(
                f"  raw producer at {raw['rate']:.0f} msg/s: scheduled -> acked", raw["latency_ms"], raw["acknowledged"]
            )
        rows.append(None)
    for raw in raws.values():
        add(f"raw producer at {raw['rate']:.0f} msg/s: scheduled -> acked", raw["latency_ms"], raw["acknowledged"])
    for name, label in (("single", "single POST, closed loop"), ("batch", "batch POST, closed loop")):
        if name in steps:
            add(label, steps[name]["latency_ms"], steps[name]["requests"])
    table("Latency", ("what", "p50 ms", "p95 ms", "p99 ms", "max ms", "requests"), rows)


def print_freshness(steps: dict[str, Any]) -> None:
    def pair(figures: dict[str, float]) -> str:
        return f"{figures['p50']:.2f} / {figures['p95']:.2f}"

    runs = [("batch POSTs", steps.get("batch")), ("single POSTs", steps.get("single"))]
    runs += [(f"fixed rate, {run['rate']:.0f} req/s", run) for run in steps.get("rates", [])]
    rows = []
    for label, step in runs:
        if fresh := (step or {}).get("freshness"):
            total = fresh["event_to_queryable_s"]
            parts = ("event_to_kafka_s", "kafka_to_batch_start_s", "batch_start_to_commit_s")
            rows.append([label, pair(total), f"{total['p99']:.2f} / {total['max']:.2f}"])
            rows[-1] += [*(pair(fresh[part]) for part in parts), num(fresh["events"])]
    columns = ("events of", "event -> queryable", "p99 / max", "event -> Kafka (API)", "-> consumer writes")
    heading = "Freshness, seconds p50 / p95: event time -> queryable in bronze, and its parts"
    table(heading, (*columns, "-> committed", "events"), rows)


def print_processes(phases: list[dict[str, Any]]) -> None:
    if not phases:
        return
    roles = [role for role in ROLES if any(role in phase["cpu_seconds"] for phase in phases)]

    def cpu(value: float | None, seconds: float) -> str:
        if value is None:
            return "-"
        return f"{value:.1f} ({value / seconds:.2f})" if seconds else f"{value:.1f}"

    rows = []
    for phase in phases:
        seconds, used = phase["seconds"], phase["cpu_seconds"]
        cells = [phase["name"], f"{seconds:.1f}", *(cpu(used.get(role), seconds) for role in roles)]
        cells += [cpu(sum(used.values()), seconds), cpu(phase["other_cpu_seconds"], seconds)]
        for role in ("api", "consumer"):
            pss, rss = phase["peak_pss_gib"].get(role), phase["peak_rss_gib"].get(role)
            cells.append("-" if pss is None else f"{pss:.2f} / {rss:.2f}")
        rows.append(cells)
    heading = "CPU seconds per process (cores busy) and peak memory; script = this one (load, raw producer, polling)"
    columns = ("phase", "seconds", *(ROLES[role] for role in roles), "sum", "others")
    table(heading, (*columns, "API peak PSS / RSS GiB", "consumer peak PSS / RSS GiB"), rows)
