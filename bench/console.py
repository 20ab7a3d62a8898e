"""Benchmark: the lab console's page loads over the lab's own lake (run it after `make demo`): the console
app served by uvicorn on a free loopback port, each page fetched over HTTP one after another, the time from
request to the whole HTML body. Target: the main page's p95 under 500 ms. The first main page (which reads
the lake's figures while the person waits) and the background read that keeps them fresh are reported
apart. What each figure means: bench/README.md.
"""

from __future__ import annotations

import re
import sys
import time
import warnings
from typing import Any
from urllib.parse import quote

import httpx
from _harness import console, finish, header, load_average, note, parser, percentiles, progress, table, verdict

from mdslab.api.server import background_server
from mdslab.console.app import create_console_app
from mdslab.settings import load_settings

PACKAGES = ("fastapi", "uvicorn", "jinja2", "deltalake", "duckdb", "psycopg")
TARGET_P95_MS = 500.0
SQL = "SELECT customer_id, sum(total_usd) AS usd FROM gold.daily_spend GROUP BY 1 ORDER BY 2 DESC LIMIT 20"
TABLE = "gold.fraud_features"


def parse_args(argv: list[str] | None) -> Any:
    found = parser("console.py", __doc__)
    found.add_argument("--requests", type=int, default=200, help="Loads of the main page (default 200).")
    found.add_argument("--other-requests", type=int, default=30, help="Loads of each other page (default 30).")
    args = found.parse_args(argv)
    if args.requests < 1 or args.other_requests < 1:
        found.error("--requests and --other-requests must be at least 1")
    return args


def _timed(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    response = client.get(path)
    response.read()
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"GET {path} answered {response.status_code}: {response.text[:300]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    report = header("console", PACKAGES, argv)
    settings = load_settings()
    pages = {  # name -> (path, loads)
        "main page": ("/", args.requests),
        f"table page ({TABLE})": (f"/tables/{TABLE}", args.other_requests),
        "lineage graph": ("/lineage", args.other_requests),
        "SQL box (a GROUP BY over gold)": (f"/sql?q={quote(SQL)}", args.other_requests),
    }
    report["lake"] = {"raw_bucket": settings.lake.raw_bucket, "curated_bucket": settings.lake.curated_bucket}
    report["refresh_s"] = settings.console.refresh_s
    with (
        progress() as stage,
        background_server(create_console_app(settings)) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        stage("first main page (reads the lake's figures)")
        report["first_main_page_s"] = round(_timed(client, "/"), 4)
        timings: dict[str, list[float]] = {}
        for name, (path, count) in pages.items():
            advance = stage(f"GET {name}", count)
            timings[name] = []
            for _ in range(count):
                timings[name].append(_timed(client, path))
                advance(1)
        report["lake_view_read_s"] = _lake_view_seconds(client)
    report["pages"] = {
        name: {"path": pages[name][0], "requests": len(seconds), "ms": percentiles(seconds, scale=1000)}
        for name, seconds in timings.items()
    }
    main_p95 = report["pages"]["main page"]["ms"]["p95"]
    report["target"] = {"main_page_p95_ms": TARGET_P95_MS, "met": main_p95 < TARGET_P95_MS}
    report["load_average_after_loads"] = load_average()
    return finish(report, args.results_dir, print_report)


def _lake_view_seconds(client: httpx.Client) -> float | None:
    """How long the last read of the lake's figures took, as the main page's footer says."""
    found = re.search(r"read [^(]+\(in (\d+) ms\)", client.get("/").text)
    return None if found is None else int(found[1]) / 1000


def print_report(report: dict[str, Any]) -> None:
    rows = []
    for name, figures in report["pages"].items():
        ms = figures["ms"]
        rows.append([name, str(figures["requests"]), *(f"{ms[key]:.1f}" for key in ("p50", "p95", "p99", "max"))])
    table("console page loads (ms, request to the whole body)", ("page", "loads", "p50", "p95", "p99", "max"), rows)
    target, p95 = report["target"], report["pages"]["main page"]["ms"]["p95"]
    console.print(
        f"main page p95 {p95:.1f} ms, target < {target['main_page_p95_ms']:.0f} ms: {verdict(target['met'])}",
        highlight=False,
    )
    read = report["lake_view_read_s"]
    console.print(
        f"the first main page took {report['first_main_page_s']:.2f} s (it reads the lake's figures while the person "
        f"waits); reading them again takes {'-' if read is None else f'{read:.2f} s'} in the background, at most "
        f"every {report['refresh_s']:g} s",
        highlight=False,
    )
    note("How to read it: bench/README.md, section bench/console.py.")


if __name__ == "__main__":
    sys.exit(main())
