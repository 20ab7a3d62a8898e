"""Documents built from the curated lake: one per claim, customer, merchant and registered table.

Table documents begin with a header that restates their identifiers in words, so a question that names
a claim, policy or customer finds them both by meaning and by identifier.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from mdslab.lakehouse import Lakehouse
from mdslab.llm.corpus import TABLES_SCOPE, Kind, SourceDocument

CLAIMS_TABLE = "silver.claims"
CUSTOMERS_TABLE = "bronze.customers"
MERCHANTS_TABLE = "bronze.merchants"
SPEND_TABLE = "gold.daily_spend"


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"{value:,.2f} USD"


CLAIM_COLUMNS = [
    "claim_id", "policy_id", "customer_id", "claim_type", "product", "amount_claimed", "currency",
    "amount_claimed_usd", "incident_date", "reported_at", "region", "status", "adjuster_notes",
]  # fmt: skip


def claim_document(row: dict[str, Any], *, version: int | None, scope: str = TABLES_SCOPE) -> SourceDocument:
    """A claim (a row of ``silver.claims`` with ``CLAIM_COLUMNS``) as a document: facts, then the notes."""
    kind = str(row["claim_type"]).replace("_", " ")
    # short sentences, one fact each: a long summary sentence would outrank the note that answers
    header = (
        f"Claim {row['claim_id']}: {kind} claim on {row['product']} policy {row['policy_id']} of customer "
        f"{row['customer_id']} in {row['region']}. Incident on {row['incident_date'].isoformat()}, reported "
        f"{row['reported_at']:%Y-%m-%d}. Amount claimed {row['amount_claimed']:,.2f} {row['currency']} "
        f"({row['amount_claimed_usd']:,.2f} USD). Status: {str(row['status']).replace('_', ' ')}."
    )
    return SourceDocument(
        doc_id=f"{CLAIMS_TABLE}:{row['claim_id']}",
        scope=scope,
        kind=Kind.CLAIM,
        text=f"{header}\nAdjuster notes:\n{row['adjuster_notes']}",
        source_table=CLAIMS_TABLE,
        table_version=version,
        row_key=row["claim_id"],
        event_date=row["incident_date"],
        extra={"customer_id": row["customer_id"], "policy_id": row["policy_id"], "status": row["status"]},
    )


def claim_documents(lake: Lakehouse) -> list[SourceDocument]:
    """One document per claim: who, what, how much, status, and the adjuster's notes verbatim."""
    version = lake.current_version(CLAIMS_TABLE)  # what the quality gate published, not the latest build
    if version is None:
        return []
    rows = lake.read_table(CLAIMS_TABLE, version=version, columns=CLAIM_COLUMNS).to_pylist()
    return [claim_document(row, version=version) for row in rows]


def _read(lake: Lakehouse, name: str) -> tuple[pa.Table | None, int | None]:
    version = lake.current_version(name)
    if version is None:
        return None, None
    return lake.read_table(name, version=version), version


CUSTOMER_SUMMARY_SQL = """
WITH spend AS (
    SELECT customer_id, sum(txn_count) AS txns, sum(total_usd) AS total_usd, max(max_usd) AS max_usd,
           count(DISTINCT merchant_id) AS merchants, min(spend_date) AS first_day, max(spend_date) AS last_day,
           arg_max(merchant_category, total_usd) AS top_category
    FROM spend_rows GROUP BY customer_id
), claimed AS (
    SELECT customer_id, count(*) AS claims, sum(amount_claimed_usd) AS claimed_usd,
           count(*) FILTER (WHERE status = 'approved') AS approved,
           count(*) FILTER (WHERE status = 'rejected') AS rejected
    FROM claim_rows GROUP BY customer_id
)
SELECT c.customer_id, c.full_name, c.city, c.country, c.region, c.segment, c.signup_date,
       s.txns, s.total_usd, s.max_usd, s.merchants, s.first_day, s.last_day, s.top_category,
       k.claims, k.claimed_usd, k.approved, k.rejected
FROM customers c LEFT JOIN spend s USING (customer_id) LEFT JOIN claimed k USING (customer_id)
WHERE s.txns IS NOT NULL OR k.claims IS NOT NULL
ORDER BY c.customer_id
"""


def customer_documents(lake: Lakehouse) -> list[SourceDocument]:
    """One summary per active customer: profile, card spend (gold.daily_spend) and claims (silver.claims).

    The row key is the customer id in ``bronze.customers``; the versions of the other inputs are kept
    in the document's metadata, so a citation can be reproduced exactly.
    """
    customers, customers_version = _read(lake, CUSTOMERS_TABLE)
    if customers is None:
        return []
    spend, spend_version = _read(lake, SPEND_TABLE)
    claims, claims_version = _read(lake, CLAIMS_TABLE)
    con = duckdb.connect()
    con.register("customers", customers)
    con.register("spend_rows", spend if spend is not None else _empty_spend())
    con.register("claim_rows", claims if claims is not None else _empty_claims())
    rows = con.sql(CUSTOMER_SUMMARY_SQL).to_arrow_table().to_pylist()
    inputs = {SPEND_TABLE: spend_version, CLAIMS_TABLE: claims_version}
    documents = []
    for row in rows:
        parts = [
            f"Customer {row['customer_id']} ({row['full_name']}), {row['segment']} segment, lives in {row['city']}, "
            f"{row['country']} ({row['region']}), customer since {row['signup_date'].isoformat()}."
        ]
        if row["txns"]:
            parts.append(
                f"Card spend: {row['txns']:,} transactions totalling {_money(row['total_usd'])} at "
                f"{row['merchants']:,} merchants between {row['first_day'].isoformat()} and "
                f"{row['last_day'].isoformat()}; largest single purchase {_money(row['max_usd'])}; most spent on "
                f"{str(row['top_category']).replace('_', ' ')}."
            )
        claims_count = row["claims"] or 0
        plural = "claim" if claims_count == 1 else "claims"
        if claims_count:
            parts.append(
                f"Insurance: {claims_count} {plural} totalling {_money(row['claimed_usd'])}, "
                f"{row['approved']} approved and {row['rejected']} rejected."
            )
        else:
            parts.append("Insurance: no claims filed.")
        documents.append(
            SourceDocument(
                doc_id=f"{CUSTOMERS_TABLE}:{row['customer_id']}",
                scope=TABLES_SCOPE,
                kind=Kind.CUSTOMER,
                text=" ".join(parts),
                source_table=CUSTOMERS_TABLE,
                table_version=customers_version,
                row_key=row["customer_id"],
                extra={"inputs": inputs, "claims": claims_count},
            )
        )
    return documents


MERCHANT_SUMMARY_SQL = """
SELECT m.merchant_id, m.name, m.category, m.mcc, m.city, m.country, m.is_online,
       sum(s.txn_count) AS txns, sum(s.total_usd) AS total_usd, count(DISTINCT s.customer_id) AS customers
FROM merchants m JOIN spend_rows s USING (merchant_id)
GROUP BY ALL ORDER BY m.merchant_id
"""


def merchant_documents(lake: Lakehouse) -> list[SourceDocument]:
    """One summary per merchant with card spend: name, category, place and volume."""
    merchants, merchants_version = _read(lake, MERCHANTS_TABLE)
    spend, spend_version = _read(lake, SPEND_TABLE)
    if merchants is None or spend is None:
        return []
    con = duckdb.connect()
    con.register("merchants", merchants)
    con.register("spend_rows", spend)
    documents = []
    for row in con.sql(MERCHANT_SUMMARY_SQL).to_arrow_table().to_pylist():
        where = f"online merchant registered in {row['city']}" if row["is_online"] else f"store in {row['city']}"
        text = (
            f"Merchant {row['merchant_id']} ({row['name']}), {str(row['category']).replace('_', ' ')} "
            f"(MCC {row['mcc']}), {where}, {row['country']}. Card spend: {row['txns']:,} transactions totalling "
            f"{_money(row['total_usd'])} from {row['customers']:,} customers."
        )
        documents.append(
            SourceDocument(
                doc_id=f"{MERCHANTS_TABLE}:{row['merchant_id']}",
                scope=TABLES_SCOPE,
                kind=Kind.MERCHANT,
                text=text,
                source_table=MERCHANTS_TABLE,
                table_version=merchants_version,
                row_key=row["merchant_id"],
                extra={"inputs": {SPEND_TABLE: spend_version}},
            )
        )
    return documents


def catalog_documents(lake: Lakehouse) -> list[SourceDocument]:
    """One document per registered table: what it holds, its key, and every column with its description."""
    documents = []
    for spec in lake.registry:
        columns = []
        for column in spec.schema:
            doc = spec.column_docs.get(column.name)
            columns.append(f"- {column.name} ({column.type}){': ' + doc if doc else ''}")
        key = f" Key: {', '.join(spec.key)}." if spec.key else ""
        text = f"Table {spec.name} ({spec.layer.value} layer): {spec.description}{key}\nColumns:\n" + "\n".join(columns)
        documents.append(
            SourceDocument(
                doc_id=f"catalog:{spec.name}",
                scope=TABLES_SCOPE,
                kind=Kind.TABLE,
                text=text,
                source_table=spec.name,
                table_version=lake.current_version(spec.name),
                row_key=spec.name,
            )
        )
    return documents


def table_documents(lake: Lakehouse) -> list[SourceDocument]:
    """The whole curated-table part of the corpus."""
    return [
        *catalog_documents(lake),
        *claim_documents(lake),
        *customer_documents(lake),
        *merchant_documents(lake),
    ]


def _empty_spend() -> pa.Table:
    return pa.table(
        {
            "customer_id": pa.array([], pa.string()),
            "merchant_id": pa.array([], pa.string()),
            "merchant_category": pa.array([], pa.string()),
            "spend_date": pa.array([], pa.date32()),
            "txn_count": pa.array([], pa.int64()),
            "total_usd": pa.array([], pa.float64()),
            "max_usd": pa.array([], pa.float64()),
        }
    )


def _empty_claims() -> pa.Table:
    return pa.table(
        {
            "customer_id": pa.array([], pa.string()),
            "amount_claimed_usd": pa.array([], pa.float64()),
            "status": pa.array([], pa.string()),
        }
    )
