"""The data-quality gate after the batch pipeline: gold is present, fresh, keyed and reconciles with silver.

Orchestrators run it between the gold steps and everything that consumes gold (scoring, RAG indexing,
training), so a bad build stops there with a reason a person can act on. Every check reads the versions
the gold tables recorded as their inputs, so a count compares like with like.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb

from mdslab.errors import MdslabError
from mdslab.lakehouse import Lakehouse
from mdslab.lakehouse.tables import METADATA_KEY
from mdslab.workloads.pipeline.steps import STEPS

GOLD_TABLES = tuple(name for step in STEPS if step.layer == "gold" for name in step.outputs)
# gold table -> (silver table, SQL over the gold rows that must equal the silver row count)
RECONCILIATIONS = {
    "gold.daily_spend": ("silver.transactions", "SELECT coalesce(sum(txn_count), 0) FROM rows"),
    "gold.fraud_features": ("silver.transactions", "SELECT count(*) FROM rows"),
    "gold.claims_monthly": ("silver.claims", "SELECT coalesce(sum(claims_count), 0) FROM rows"),
    "gold.claims_features": ("silver.claims", "SELECT count(*) FROM rows"),
}
QUARANTINES = {"silver.transactions": "silver.quarantine_transactions", "silver.claims": "silver.quarantine_claims"}


class QualityGateError(MdslabError):
    """The gate failed; the message lists every failed check in one line."""


@dataclass(frozen=True)
class QualityCheck:
    name: str
    table: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class QualityReport:
    checks: list[QualityCheck]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> list[QualityCheck]:
        return [check for check in self.checks if not check.passed]

    def reason(self) -> str:
        failed = self.failures
        if not failed:
            return f"all {len(self.checks)} quality checks passed"
        return f"{len(failed)} of {len(self.checks)} quality checks failed: " + "; ".join(
            f"{c.table} {c.name}: {c.detail}" for c in failed
        )


def _count(lake: Lakehouse, table: str, query: str, version: int | None = None) -> int:
    con = duckdb.connect()
    con.register("rows", lake.read_table(table, version=version))
    row = con.execute(query).fetchone()
    return int(row[0]) if row else 0


MAINTENANCE = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END"})  # rewrite files, not data


def _step_record(lake: Lakehouse, table: str) -> tuple[dict[str, int], list[str]]:
    """The inputs the pipeline step recorded in its last commit of ``table``, and the data-changing
    commits made after it by anything else (maintenance commits do not count)."""
    after: list[str] = []
    for entry in lake.delta(table).history():  # newest first
        record = entry.get(METADATA_KEY) or "{}"
        stamp = json.loads(record) if isinstance(record, str) else dict(record)
        if stamp.get("step"):
            return dict(stamp.get("inputs", {})), after
        if entry.get("operation") not in MAINTENANCE:
            after.append(f"{entry.get('operation')} at v{entry.get('version')}")
    return {}, after


def freshness(lake: Lakehouse, table: str) -> tuple[dict[str, int], list[str]]:
    """The input versions ``table`` was built from, and why it no longer matches them ([] if fresh):
    an input has a newer version, or something other than its step changed the table afterwards."""
    inputs, changed_after = _step_record(lake, table)
    stale = {name: (built, lake.version(name)) for name, built in inputs.items() if built != lake.version(name)}
    problems = [f"built from {name} v{built}, which is now v{now}" for name, (built, now) in stale.items()]
    if changed_after:
        problems.append(f"changed outside the pipeline since it built it ({', '.join(changed_after)})")
    return inputs, problems


def _gold_checks(lake: Lakehouse, table: str) -> list[QualityCheck]:
    if not lake.exists(table) or lake.row_count(table) == 0:
        return [QualityCheck("present", table, False, "missing or empty: run `mdslab pipeline run`")]
    checks = [QualityCheck("present", table, True, f"{lake.row_count(table):,} rows")]
    inputs, problems = freshness(lake, table)
    checks.append(
        QualityCheck(
            "fresh", table, not problems, "; ".join(problems) or "built from the current version of every input"
        )
    )
    key = lake.spec(table).key
    if key:
        columns = ", ".join(key)
        duplicates = _count(lake, table, f"SELECT count(*) - count(DISTINCT ({columns})) FROM rows")
        checks.append(
            QualityCheck("unique key", table, duplicates == 0, f"{duplicates:,} rows repeat a ({columns}) key")
        )
    silver, query = RECONCILIATIONS[table]
    if silver in inputs:
        expected = lake.row_count(silver, version=inputs[silver])
        found = _count(lake, table, query)
        checks.append(
            QualityCheck(
                "reconciles",
                table,
                found == expected,
                f"accounts for {found:,} {silver} rows of {expected:,} (v{inputs[silver]})",
            )
        )
    return checks


def _quarantine_checks(lake: Lakehouse, max_quarantine_share: float) -> list[QualityCheck]:
    checks = []
    for silver, quarantine in QUARANTINES.items():
        if not lake.exists(silver):
            continue
        kept = lake.row_count(silver)
        rejected = lake.row_count(quarantine) if lake.exists(quarantine) else 0
        share = rejected / max(kept + rejected, 1)
        checks.append(
            QualityCheck(
                "quarantine share",
                silver,
                share <= max_quarantine_share,
                f"{rejected:,} of {kept + rejected:,} events quarantined "
                f"({share:.2%}; limit {max_quarantine_share:.0%})",
            )
        )
    return checks


def check_gold(lake: Lakehouse, *, max_quarantine_share: float = 0.05) -> QualityReport:
    """Every check, passed or not (the gate decides; the report explains)."""
    checks = [check for table in GOLD_TABLES for check in _gold_checks(lake, table)]
    return QualityReport([*checks, *_quarantine_checks(lake, max_quarantine_share)])


def enforce(report: QualityReport) -> QualityReport:
    """Raise :class:`QualityGateError` naming every failed check; return the report when all passed."""
    if not report.passed:
        raise QualityGateError(f"quality gate: {report.reason()}")
    return report
