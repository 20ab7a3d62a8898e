"""silver -> gold as SQL: a daily spend mart, point-in-time fraud and claims features, monthly claims."""

from __future__ import annotations

from mdslab.workloads.pipeline.dialect import Dialect
from mdslab.workloads.pipeline.plan import SqlPlan
from mdslab.workloads.pipeline.silver_sql import POLICY_TERMS, haversine_km, policy_term_of, usd

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
LARGE_LOSS_USD = 10_000
FRAUD_LOOK_BACK_US = 30 * DAY_US  # the longest bounded window of the fraud features
# the silver columns the fraud features read (an increment reads only these)
FRAUD_INPUT_COLUMNS = (
    "event_id", "customer_id", "merchant_id", "event_time", "amount_usd", "merchant_category", "channel",
    "local_hour", "distance_from_home_km", "lat", "lon",
)  # fmt: skip
# what its windows read of a customer's earlier row (an increment reads only these of the look-back)
FRAUD_WINDOW_COLUMNS = ("customer_id", "merchant_id", "event_time", "amount_usd", "channel", "lat", "lon")


def daily_spend_plan(d: Dialect) -> SqlPlan:
    return SqlPlan(
        inputs={"silver_transactions": "silver.transactions"},
        stages=(),
        outputs={
            "gold.daily_spend": (
                "SELECT event_date AS spend_date, customer_id, merchant_id, min(merchant_category) AS "
                "merchant_category, min(customer_region) AS customer_region, count(*) AS txn_count, "
                "round(sum(amount_usd), 2) AS total_usd, round(avg(amount_usd), 2) AS avg_usd, "
                "max(amount_usd) AS max_usd FROM silver_transactions GROUP BY event_date, customer_id, merchant_id"
            )
        },
    )


def _before(partition: str, span_us: int | None) -> str:
    """A window over the same customer's strictly earlier rows (1 microsecond before this one at most):
    no feature can see the row itself or anything after it."""
    start = "UNBOUNDED PRECEDING" if span_us is None else f"{span_us} PRECEDING"
    return f"PARTITION BY {partition} ORDER BY _ts RANGE BETWEEN {start} AND 1 PRECEDING"


def fraud_features_plan(d: Dialect) -> SqlPlan:
    w1h, w24h, w30d = (
        _before("customer_id", HOUR_US),
        _before("customer_id", DAY_US),
        _before("customer_id", FRAUD_LOOK_BACK_US),
    )
    history = _before("customer_id", None)
    prev_lat = d.last_non_null_over("lat", history)
    prev_lon = d.last_non_null_over("lon", history)
    features = (
        "SELECT event_id, customer_id, merchant_id, event_time, amount_usd, merchant_category, channel, "
        "local_hour, distance_from_home_km, "
        f"count(*) OVER ({w1h}) AS txn_count_1h, "
        f"count(*) OVER ({w24h}) AS txn_count_24h, "
        f"CAST(coalesce(sum(CASE WHEN channel = 'online' AND amount_usd < 5 THEN 1 ELSE 0 END) OVER ({w1h}), 0) "
        "AS BIGINT) AS small_online_count_1h, "
        f"CAST({d.distinct_count_over('merchant_id', w24h)} AS BIGINT) AS distinct_merchants_24h, "
        f"round(avg(amount_usd) OVER ({w24h}), 4) AS avg_amount_24h, "
        f"round(avg(amount_usd) OVER ({w30d}), 4) AS avg_amount_30d, "
        f"(_ts - max(_ts) OVER ({history})) / 1e6 AS seconds_since_prev, "
        f"CASE WHEN lat IS NOT NULL THEN round({haversine_km('lat', 'lon', prev_lat, prev_lon)}, 3) END "
        "AS km_from_prev_located, "
        f"count(*) OVER ({_before('customer_id, merchant_id', None)}) = 0 AS is_new_merchant "
        f"FROM (SELECT *, {d.epoch_micros('event_time')} AS _ts FROM silver_transactions)"
    )
    labels = (
        "SELECT event_id, is_fraud, fraud_pattern FROM (SELECT *, row_number() OVER "
        "(PARTITION BY event_id ORDER BY reported_at DESC, ingested_at DESC) AS _n FROM fraud_labels) WHERE _n = 1"
    )
    return SqlPlan(
        inputs={"silver_transactions": "silver.transactions", "fraud_labels": "bronze.fraud_labels"},
        stages=(),
        outputs={
            "gold.fraud_features": (
                "SELECT f.event_id, customer_id, merchant_id, event_time, amount_usd, merchant_category, channel, "
                "local_hour, distance_from_home_km, txn_count_1h, txn_count_24h, small_online_count_1h, "
                "distinct_merchants_24h, avg_amount_24h, avg_amount_30d, "
                "round(amount_usd / avg_amount_30d, 4) AS amount_to_avg_30d, seconds_since_prev, "
                "km_from_prev_located, is_new_merchant, l.is_fraud AS label_is_fraud, "
                f"l.fraud_pattern AS label_pattern FROM ({features}) f "
                f"LEFT JOIN ({labels}) l ON f.event_id = l.event_id"
            )
        },
    )


def claims_monthly_plan(d: Dialect) -> SqlPlan:
    def count_status(status: str) -> str:
        return f"CAST(sum(CASE WHEN status = '{status}' THEN 1 ELSE 0 END) AS BIGINT)"

    return SqlPlan(
        inputs={"silver_claims": "silver.claims"},
        stages=(),
        outputs={
            "gold.claims_monthly": (
                "SELECT incident_month, region, product, claim_type, claims_count, total_claimed_usd, "
                "avg_claimed_usd, approved_count, rejected_count, open_count, "
                "CASE WHEN approved_count + rejected_count > 0 THEN "
                "round(approved_count / CAST(approved_count + rejected_count AS DOUBLE), 4) END AS approval_rate, "
                "avg_report_lag_days FROM (SELECT incident_month, region, product, claim_type, "
                "count(*) AS claims_count, round(sum(amount_claimed_usd), 2) AS total_claimed_usd, "
                "round(avg(amount_claimed_usd), 2) AS avg_claimed_usd, "
                f"{count_status('approved')} AS approved_count, {count_status('rejected')} AS rejected_count, "
                f"{count_status('open')} + {count_status('under_review')} AS open_count, "
                "round(avg(report_lag_days), 2) AS avg_report_lag_days "
                "FROM silver_claims GROUP BY incident_month, region, product, claim_type)"
            )
        },
    )


def claims_features_plan(d: Dialect) -> SqlPlan:
    """Per claim, what is known when it is reported (first notice of loss): the claim, the terms in USD
    of the policy term its incident falls in, and the policy's and customer's strictly earlier claims;
    the label is whether the claim turned out to be a large loss (>= 10,000 USD claimed), for triage at
    first notice."""
    year = 365 * DAY_US
    features = (
        "SELECT c.event_id, c.claim_id, c.policy_id, c.customer_id, c.reported_at, c.product, c.claim_type, "
        "c.region, c.customer_segment, c.report_lag_days, c.amount_claimed_usd, "
        f"{usd('p.coverage_limit', 'p.currency')} AS coverage_limit_usd, {usd('p.deductible', 'p.currency')} "
        f"AS deductible_usd, {usd('p.annual_premium', 'p.currency')} AS annual_premium_usd, "
        f"count(*) OVER ({_before('c.policy_id', year)}) AS prior_claims_policy_365d, "
        f"count(*) OVER ({_before('c.customer_id', year)}) AS prior_claims_customer_365d, "
        f"CAST(coalesce(sum(CASE WHEN c.amount_claimed_usd >= {LARGE_LOSS_USD} THEN 1 ELSE 0 END) "
        f"OVER ({_before('c.customer_id', None)}), 0) AS BIGINT) AS prior_large_losses_customer "
        f"FROM (SELECT *, {d.epoch_micros('reported_at')} AS _ts FROM silver_claims) c "
        f"LEFT JOIN {POLICY_TERMS} p ON {policy_term_of('c', 'p')}"
    )
    return SqlPlan(
        inputs={"silver_claims": "silver.claims", "policies": "bronze.policies"},
        stages=(),
        outputs={
            "gold.claims_features": (
                "SELECT event_id, claim_id, policy_id, customer_id, reported_at, product, claim_type, region, "
                "customer_segment, report_lag_days, coverage_limit_usd, deductible_usd, annual_premium_usd, "
                "prior_claims_policy_365d, prior_claims_customer_365d, prior_large_losses_customer, "
                f"amount_claimed_usd, amount_claimed_usd >= {LARGE_LOSS_USD} AS label_large_loss FROM ({features})"
            )
        },
    )
