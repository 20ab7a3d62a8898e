"""The analyst queries bench/sql.py times, and the check that every engine gave the same answer.

Each query is one text that runs unchanged on all three engines (DuckDB's and Spark's dialects meet
in it: ordinals in GROUP BY, CASE instead of FILTER, windows written out), over the registry's names,
so ``mdslab sql`` and ``mdslab sql --engine spark`` see exactly what an analyst would type. Between
them they exercise the engine's three kinds of work: a join of gold with bronze reference data, a big
join of silver with gold, and a window over silver at a past version (time travel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from _compare import compare_tables


@dataclass(frozen=True)
class Query:
    name: str
    question: str  # what the analyst asks
    template: str  # the SQL; ``{previous}`` is the version of silver.transactions the build before published
    keys: tuple[str, ...]  # result columns that identify a row, to compare the engines' answers

    def text(self, previous: int) -> str:
        return self.template.format(previous=previous)


MONTHLY_SPEND = Query(
    "monthly_spend_by_region",
    "spend, transactions and active customers per month, region and customer segment",
    """
SELECT year(d.spend_date) AS year, month(d.spend_date) AS month, d.customer_region AS region,
       c.segment, count(DISTINCT d.customer_id) AS customers, sum(d.txn_count) AS transactions,
       round(sum(d.total_usd), 2) AS spend_usd
FROM gold.daily_spend d
JOIN bronze.customers c ON c.customer_id = d.customer_id
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4
""",
    ("year", "month", "region", "segment"),
)

FRAUD_BY_MERCHANT = Query(
    "top_merchants_by_fraud_rate",
    "the 25 merchants (>= 20 transactions) with the highest share of labelled fraud",
    """
SELECT t.merchant_id, m.name AS merchant, t.merchant_category AS category, count(*) AS transactions,
       sum(CASE WHEN f.label_is_fraud THEN 1 ELSE 0 END) AS frauds,
       round(sum(CASE WHEN f.label_is_fraud THEN t.amount_usd ELSE 0 END), 2) AS fraud_usd,
       CAST(sum(CASE WHEN f.label_is_fraud THEN 1 ELSE 0 END) AS DOUBLE) / count(*) AS fraud_rate
FROM silver.transactions t
JOIN gold.fraud_features f ON f.event_id = t.event_id
JOIN bronze.merchants m ON m.merchant_id = t.merchant_id
GROUP BY 1, 2, 3
HAVING count(*) >= 20
ORDER BY fraud_rate DESC, transactions DESC, merchant_id
LIMIT 25
""",
    ("merchant_id",),
)

SPEND_JUMPS = Query(
    "spend_jumps_as_of_last_build",
    "as the lake stood one build ago: the 25 biggest jumps of a payment over the customer's previous 20",
    """
WITH history AS (
  SELECT customer_id, event_id, event_time, amount_usd,
         avg(amount_usd) OVER (PARTITION BY customer_id ORDER BY event_time, event_id
                               ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING) AS usual_usd,
         count(*) OVER (PARTITION BY customer_id ORDER BY event_time, event_id
                        ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING) AS earlier
  FROM silver.transactions@v{previous}
)
SELECT customer_id, event_id, event_time, amount_usd, round(usual_usd, 2) AS usual_usd,
       round(amount_usd / usual_usd, 2) AS times_usual
FROM history
WHERE earlier = 20
ORDER BY amount_usd / usual_usd DESC, event_id
LIMIT 25
""",
    ("event_id",),
)

QUERIES = (MONTHLY_SPEND, FRAUD_BY_MERCHANT, SPEND_JUMPS)


def same_answer(query: Query, reference: pa.Table, other: pa.Table) -> dict[str, Any]:
    """Does ``other`` hold the rows of ``reference``? Compared on the query's keys; sums of doubles may
    differ by one rounding step between engines (summation order), counted apart as flips."""
    comparable = other.rename_columns(reference.column_names)  # Spark may name an expression differently
    found = compare_tables(query.name, _plain(reference), _plain(comparable), query.keys)
    return {
        "agree": found.agree,
        "rows": list(found.rows),
        "rounding_flips": found.rounding_flips,
        "mismatched_values": found.mismatches,
    }


def _plain(table: pa.Table) -> pa.Table:
    """Numbers as doubles (a sum of integers is an int128 decimal in DuckDB, a long in Spark), text as
    plain strings."""
    columns = []
    for column in table.columns:
        if pa.types.is_decimal(column.type) or pa.types.is_integer(column.type):
            column = column.cast(pa.float64())
        elif pa.types.is_string_view(column.type) or pa.types.is_large_string(column.type):
            column = column.cast(pa.string())
        columns.append(column)
    return pa.table(columns, names=table.column_names)
