"""Benchmark: `mdslab extract mongo`, the claims system's case files from the MongoDB-protocol server into
bronze.claim_documents. Loads N case files (shaped as the simulator's, with new claim ids) into a database of
its own, then measures, in one run:

- the baseline: reading every document with pymongo alone, in the extractor's order (the source's ceiling);
- the full extraction (every document into bronze): documents/s, against the baseline;
- an incremental extraction after 1 % of the documents changed: its seconds against the full one's.

Target: >= 5,000 documents/s into bronze on 2 cores. Run it with the lab's services up (`mdslab up`).
What each figure means: bench/README.md.
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any

from _harness import console, finish, header, human_rows, lab, note, parser, progress, ratio, table, title, verdict
from _measure import TreeSampler

from mdslab import documentstore, objectstore
from mdslab.settings import Settings, load_settings
from mdslab.workloads.case_files.documents import case_file, claims_of, revision
from mdslab.workloads.case_files.extract import extract_case_files
from mdslab.workloads.case_files.store import COLLECTION, now_ms
from mdslab.workloads.lake import lakehouse
from mdslab.workloads.simulator import SimulationConfig, simulate

PACKAGES = ("pymongo", "secantusdb", "deltalake", "pyarrow")
TARGET_DOCS_PER_S = 5_000.0
CHANGED_SHARE = 0.01
INSERT_BATCH = 5_000


def parse_args(argv: list[str] | None) -> Any:
    found = parser("case_files.py", __doc__)
    found.add_argument("--documents", type=int, default=100_000, help="Case files to load (default 100,000).")
    args = found.parse_args(argv)
    if args.documents < 100:
        found.error("--documents must be at least 100 (1 % of them change for the incremental run)")
    return args


def _documents(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` case files: the simulator's claims, repeated with new claim ids (same shapes and defects)."""
    claims = claims_of(simulate(SimulationConfig(transactions=50_000, seed=seed)).claims)
    at = now_ms()
    files = []
    for index in range(count):
        claim = dict(claims[index % len(claims)], claim_id=f"CL{index + 1:08d}")
        files.append(case_file(claim, at))
    return files


def _read_all(settings: Settings) -> tuple[int, float]:
    """The baseline: every document through pymongo in the extractor's order, nothing written."""
    started = time.perf_counter()
    with documentstore.connect(settings.mongo) as client:
        cursor = client[settings.mongo.database][COLLECTION].find({}).sort([("updated_at", 1), ("_id", 1)])
        count = sum(1 for _ in cursor.batch_size(5_000))
    return count, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = header("case_files", PACKAGES, argv)
    tag = f"bench-cf-{uuid.uuid4().hex[:8]}"
    settings = lab(load_settings(), tag, own_database=False)
    settings = settings.model_copy(
        update={"mongo": settings.mongo.model_copy(update={"database": tag.replace("-", "_")})}
    )
    report["arguments"] = {"documents": args.documents, "seed": args.seed}
    lake = lakehouse(settings)
    try:
        with progress() as stage, TreeSampler() as sampler:
            stage("simulating case files")
            files = _documents(args.documents, args.seed)
            advance = stage("loading the source", len(files))
            with documentstore.connect(settings.mongo) as client:
                collection = client[settings.mongo.database][COLLECTION]
                collection.create_index([("updated_at", 1), ("_id", 1)])  # as the claims system has it
                for start in range(0, len(files), INSERT_BATCH):
                    collection.insert_many(files[start : start + INSERT_BATCH], ordered=False)
                    advance(min(INSERT_BATCH, len(files) - start))
            stage("baseline: reading every document with pymongo")
            read_count, read_s = _read_all(settings)
            stage("full extraction into bronze")
            with sampler.phase("full") as full_phase:
                full = extract_case_files(settings.mongo, lake, on_progress=stage.say)
            changed_ids = [doc["_id"] for doc in files[:: int(1 / CHANGED_SHARE)]]
            stage(f"changing {len(changed_ids):,} documents ({CHANGED_SHARE:.0%})")
            at = now_ms()
            with documentstore.connect(settings.mongo) as client:
                collection = client[settings.mongo.database][COLLECTION]
                for claim_id in changed_ids:
                    collection.update_one({"_id": claim_id}, {"$set": revision({"_id": claim_id}, run=1, at=at)})
            stage("incremental extraction")
            with sampler.phase("incremental") as incremental_phase:
                incremental = extract_case_files(settings.mongo, lake, on_progress=stage.say)
    finally:
        with documentstore.connect(settings.mongo) as client:
            client.drop_database(settings.mongo.database)
        objectstore.remove_buckets(
            objectstore.s3_client(settings.s3), [settings.lake.raw_bucket, settings.lake.curated_bucket]
        )
    full_rate = full.upserts / full.seconds
    report["baseline_read"] = {
        "documents": read_count,
        "seconds": round(read_s, 3),
        "documents_per_s": round(read_count / read_s),
    }
    report["full"] = full.as_dict() | {"documents_per_s": round(full_rate), "measured": full_phase.as_dict()}
    report["incremental"] = incremental.as_dict() | {
        "changed_documents": len(changed_ids),
        "seconds_vs_full": round(incremental.seconds / full.seconds, 4),
        "measured": incremental_phase.as_dict(),
    }
    report["target"] = {"documents_per_s": TARGET_DOCS_PER_S, "met": full_rate >= TARGET_DOCS_PER_S}
    return finish(report, args.results_dir, print_report)


def print_report(report: dict[str, Any]) -> None:
    base, full, inc = report["baseline_read"], report["full"], report["incremental"]
    title(
        f"case files: MongoDB protocol -> bronze.claim_documents, {human_rows(base['documents'])} documents",
        report,
        f"SecantusDB {report['versions']['secantusdb']}, pymongo {report['versions']['pymongo']}",
    )
    rows = [
        ["baseline: pymongo reads every document", f"{base['documents']:,}", f"{base['seconds']:.2f}",
         f"{base['documents_per_s']:,}", "1.00x", "-"],
        ["full extraction into bronze", f"{full['upserts']:,}", f"{full['seconds']:.2f}",
         f"{full['documents_per_s']:,}", ratio(full["documents_per_s"], base["documents_per_s"]),
         f"{full['measured']['peak_rss_gib']:.2f}"],
        [f"incremental, {inc['changed_documents']:,} changed", f"{inc['upserts']:,}", f"{inc['seconds']:.2f}",
         "-", "-", f"{inc['measured']['peak_rss_gib']:.2f}"],
    ]  # fmt: skip
    table(None, ("run", "documents", "seconds", "documents/s", "vs baseline", "peak RSS GiB"), rows)
    target = report["target"]
    print_line = (
        f"full extraction {full['documents_per_s']:,} documents/s, target >= {target['documents_per_s']:,.0f}: "
        f"{verdict(target['met'])}; the incremental run took {inc['seconds_vs_full']:.1%} of the full one's time"
    )

    console.print(print_line, highlight=False)
    note("How to read it: bench/README.md, section bench/case_files.py.")


if __name__ == "__main__":
    sys.exit(main())
