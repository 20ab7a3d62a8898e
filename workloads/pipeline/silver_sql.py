"""bronze -> silver as SQL: parse raw JSON against the contract, type, deduplicate by event_id,
conform with reference data; every rejected row goes to quarantine with all its reasons.

One pass over bronze (a :func:`~mdslab.workloads.pipeline.plan.routed_plan`): ``checked`` types every
row and lists its contract problems, ``ranked`` numbers the copies of each valid event_id, ``routed``
joins the reference data and sends each row to silver or to quarantine with that output's columns.
No row is filtered out before the last stage: in Spark, a filter on ``_problems`` would be pushed
below the projection that computes it and parse the JSON and run every rule once more (it made the
step 3x slower).
"""

from __future__ import annotations

from pydantic import BaseModel

from mdslab.workloads.contracts import CLAIM_TYPES_BY_PRODUCT, FieldRule, field_rules
from mdslab.workloads.contracts import Claim as ClaimContract
from mdslab.workloads.contracts import Transaction as TransactionContract
from mdslab.workloads.pipeline.contract_sql import RAW, problem_expression, raw_column, typed_expression
from mdslab.workloads.pipeline.dialect import Dialect
from mdslab.workloads.pipeline.fx import FX_TO_USD
from mdslab.workloads.pipeline.plan import OUTPUT_COLUMN, Route, SqlPlan, routed_plan

EARTH_RADIUS_KM = 6371.0088
LINEAGE = "source, ingested_at, kafka_topic, kafka_partition, kafka_offset"


def haversine_km(lat1: str, lon1: str, lat2: str, lon2: str) -> str:
    return (
        f"2 * {EARTH_RADIUS_KM} * asin(sqrt(power(sin(radians({lat2} - {lat1}) / 2), 2) + "
        f"cos(radians({lat1})) * cos(radians({lat2})) * power(sin(radians({lon2} - {lon1}) / 2), 2)))"
    )


def usd(amount: str, currency: str) -> str:
    cases = " ".join(f"WHEN '{code}' THEN {rate!r}" for code, rate in FX_TO_USD.items())
    return f"round({amount} * CASE {currency} {cases} END, 2)"


def _parsed(rules: list[FieldRule], d: Dialect) -> str:
    """Raw text of every contract field, whether the payload is a JSON object, and its unknown keys."""
    names = [rule.name for rule in rules]
    if d.spark:
        ddl = ", ".join(f"`{name}` STRING" for name in [*names, "_corrupt"])
        options = "map('allowSingleQuotes', 'false', 'columnNameOfCorruptRecord', '_corrupt')"
        raws = ", ".join(f"_r.`{name}` AS {raw_column(rule)}" for name, rule in zip(names, rules, strict=True))
        # The keys are listed once per row (two JSON parses per row, not three): both uses read _keys.
        return (
            f"SELECT payload, event_id AS _bronze_event_id, {LINEAGE}, {raws}, "
            f"(_r._corrupt IS NOT NULL OR _keys IS NULL) AS _malformed, "
            f"CASE WHEN _r._corrupt IS NULL THEN {d.keys_outside('_keys', names)} END AS _extra "
            f"FROM (SELECT *, from_json(payload, '{ddl}', {options}) AS _r, {d.object_keys('payload')} AS _keys "
            "FROM bronze_events)"
        )
    paths = "[" + ", ".join(f"'$.\"{name}\"'" for name in names) + "]"
    raws = ", ".join(f"_v[{i + 1}] AS {raw_column(rule)}" for i, rule in enumerate(rules))
    return (
        f"SELECT payload, _bronze_event_id, {LINEAGE}, {raws}, NOT _ok AS _malformed, "
        f"CASE WHEN _ok THEN {d.keys_outside(d.object_keys('payload'), names)} END AS _extra "
        f"FROM (SELECT *, CASE WHEN _ok THEN json_extract_string(payload, {paths}) END AS _v FROM ("
        f"SELECT *, event_id AS _bronze_event_id, "
        f"CASE WHEN json_valid(payload) THEN json_type(payload) = 'OBJECT' ELSE false END AS _ok "
        f"FROM bronze_events))"
    )


def checked_sql(model: type[BaseModel], d: Dialect, cross_field: list[str]) -> str:
    """Every bronze row with typed contract fields and ``_problems`` ('code|message' texts), plus what
    later stages read: the payload, lineage and the event_id as received."""
    rules = field_rules(model)
    typed = ", ".join(f"{typed_expression(rule, d)} AS {rule.name}" for rule in rules)
    extra = (
        f"CASE WHEN {d.size('_extra')} > 0 THEN concat('unexpected_field|', {d.join('_extra', ', ')}, "
        "': not in the contract') END"
    )
    problems = d.compact(d.array([problem_expression(rule, d) for rule in rules] + [extra, *cross_field]))
    malformed = d.array([d.string_literal("malformed_json|payload: not a JSON object")])
    names = ", ".join(rule.name for rule in rules)
    return (
        f"SELECT payload, _bronze_event_id, {LINEAGE}, {RAW}event_id, {names}, "
        f"CASE WHEN _malformed THEN {malformed} ELSE {problems} END AS _problems "
        f"FROM (SELECT *, {typed} FROM ({_parsed(rules, d)}))"
    )


RANKED_SQL = (
    "SELECT *, CASE WHEN {valid} THEN row_number() OVER (PARTITION BY {valid}, event_id ORDER BY ingested_at, "
    "kafka_partition NULLS FIRST, kafka_offset NULLS FIRST, payload) END AS _rank FROM checked"
)
"""Copies of a valid event_id numbered 1, 2, ... (the first received is kept); NULL for invalid rows,
which are partitioned apart so that they never shift a valid row's number."""

INCREMENT_RANKED_SQL = (
    "SELECT c.*, CASE WHEN {valid} THEN row_number() OVER (PARTITION BY {valid}, c.event_id ORDER BY ingested_at, "
    "kafka_partition NULLS FIRST, kafka_offset NULLS FIRST, payload) + CASE WHEN s._seen_id IS NULL THEN 0 ELSE 1 END "
    "END AS _rank FROM checked c LEFT JOIN seen s ON {valid} AND c.event_id = s._seen_id"
)
"""The same numbering for a batch of new bronze rows: an event_id silver already received (``seen``:
its rows and its valid first copies in quarantine) makes every copy in the batch a later one. Earlier
commits were received earlier, so this keeps the copy a full rebuild keeps."""

SEEN_SQL = (
    "SELECT DISTINCT event_id AS _seen_id FROM {silver} UNION SELECT event_id FROM {quarantine} WHERE {first_copy}"
)
CONFORMANCE_CODES = ("unknown_reference", "inconsistent")  # rejections of a valid first copy

SILVER, QUARANTINE = "silver", "quarantine"
Column = tuple[str, str]  # (output column, SQL expression)


def _routed_sql(d: Dialect, joined: str, tables: tuple[str, str], columns: dict[str, list[Column]]) -> str:
    """Each row of ``joined`` with its output table in ``_output`` and the columns of that output
    (``silver__<name>`` / ``quarantine__<name>``, NULL for the other output's rows).

    A row is rejected for its contract problems first, then as a later copy of an event_id, then for
    failed conformance (the first reason that applies is the one it is quarantined with).
    """
    silver, quarantine = tables
    duplicate = d.array(["concat('duplicate|event_id: ', event_id, ' was already received; this copy is ignored')"])
    invalid = f"{d.size('_problems')} > 0"
    route = (
        f"CASE WHEN {invalid} OR _rank > 1 OR {d.size('_conform_problems')} > 0 THEN '{quarantine}' ELSE '{silver}' END"
    )
    rejections = f"CASE WHEN {invalid} THEN _problems WHEN _rank > 1 THEN {duplicate} ELSE _conform_problems END"
    selected = ", ".join(
        f"CASE WHEN {OUTPUT_COLUMN} = '{table}' THEN {expression} END AS {alias}__{name}"
        for alias, table in ((SILVER, silver), (QUARANTINE, quarantine))
        for name, expression in columns[alias]
    )
    return (
        f"SELECT {OUTPUT_COLUMN}, {selected} FROM ("
        f"SELECT *, {route} AS {OUTPUT_COLUMN}, {rejections} AS _rejections FROM ({joined}))"
    )


def _quarantine_columns(d: Dialect) -> list[Column]:
    invalid = f"{d.size('_problems')} > 0"
    return [
        ("event_id", f"CASE WHEN {invalid} THEN coalesce({RAW}event_id, _bronze_event_id) ELSE event_id END"),
        ("payload", "payload"),
        ("reason_codes", d.transform("_rejections", "substr(x, 1, instr(x, '|') - 1)")),
        ("reasons", d.transform("_rejections", "substr(x, instr(x, '|') + 1)")),
        *[(name, name) for name in LINEAGE.split(", ")],
    ]


def _plan(
    d: Dialect,
    model: type[BaseModel],
    cross_field: list[str],
    joined: str,
    silver_columns: list[Column],
    outputs: tuple[str, str],
    inputs: dict[str, str],
    incremental: bool,
) -> SqlPlan:
    """``incremental``: the plan for a batch of new bronze rows, with input views ``seen_silver`` and
    ``seen_quarantine`` (the event ids of the current outputs, for the duplicate check)."""
    columns = {SILVER: silver_columns, QUARANTINE: _quarantine_columns(d)}
    valid = f"{d.size('_problems')} = 0"
    stages: tuple[tuple[str, str], ...] = (("checked", checked_sql(model, d, cross_field)),)
    if incremental:
        first_copy = " OR ".join(f"element_at(reason_codes, 1) = '{code}'" for code in CONFORMANCE_CODES)
        if not d.spark:
            first_copy = first_copy.replace("element_at(reason_codes, 1)", "reason_codes[1]")
        seen = SEEN_SQL.format(silver="seen_silver", quarantine="seen_quarantine", first_copy=first_copy)
        inputs = {**inputs, "seen_silver": outputs[0], "seen_quarantine": outputs[1]}
        stages += (("seen", seen), ("ranked", INCREMENT_RANKED_SQL.format(valid=valid)))
    else:
        stages += (("ranked", RANKED_SQL.format(valid=valid)),)
    return routed_plan(
        inputs,
        (
            *stages,
            ("routed", _routed_sql(d, joined, outputs, columns)),
        ),
        [
            Route(table, tuple((f"{alias}__{name}", name) for name, _ in columns[alias]))
            for alias, table in zip((SILVER, QUARANTINE), outputs, strict=True)
        ],
    )


def _unknown(field: str, known: str, master: str) -> str:
    return f"CASE WHEN NOT {known} THEN concat('unknown_reference|{field}: ', r.{field}, ' is not in the {master}') END"


def silver_transactions_plan(d: Dialect, *, incremental: bool = False) -> SqlPlan:
    joined = (
        "SELECT r.*, c.region AS customer_region, c.segment AS customer_segment, c.timezone AS customer_timezone, "
        "c.home_lat, c.home_lon, m.category AS merchant_category, m.is_online AS merchant_is_online, "
        "m.region AS merchant_region, "
        + d.compact(
            d.array(
                [
                    _unknown("customer_id", "c.customer_id IS NOT NULL", "customer master"),
                    _unknown("merchant_id", "m.merchant_id IS NOT NULL", "merchant master"),
                ]
            )
        )
        + " AS _conform_problems FROM ranked r LEFT JOIN customers c ON r._rank = 1 AND r.customer_id = c.customer_id "
        "LEFT JOIN merchants m ON r._rank = 1 AND r.merchant_id = m.merchant_id"
    )
    distance = (
        f"CASE WHEN lat IS NOT NULL AND lon IS NOT NULL THEN "
        f"round({haversine_km('home_lat', 'home_lon', 'lat', 'lon')}, 3) END"
    )
    columns = [
        *[(rule.name, rule.name) for rule in field_rules(TransactionContract)],
        ("amount_usd", usd("amount", "currency")),
        ("event_date", "CAST(event_time AS DATE)"),
        ("event_month", "CAST(date_trunc('MONTH', CAST(event_time AS DATE)) AS DATE)"),
        ("local_hour", f"CAST({d.local_hour('event_time', 'customer_timezone')} AS INT)"),
        *[(name, name) for name in ("customer_region", "customer_segment", "merchant_category")],
        *[(name, name) for name in ("merchant_is_online", "merchant_region")],
        ("distance_from_home_km", distance),
        ("source", "source"),
        ("ingested_at", "ingested_at"),
    ]
    return _plan(
        d,
        TransactionContract,
        [],
        joined,
        columns,
        ("silver.transactions", "silver.quarantine_transactions"),
        {
            "bronze_events": "bronze.transactions",
            "customers": "bronze.customers",
            "merchants": "bronze.merchants",
        },
        incremental,
    )


POLICY_TERMS = (
    "(SELECT *, lead(start_date) OVER (PARTITION BY policy_id ORDER BY start_date) AS _next_start, "
    "min(start_date) OVER (PARTITION BY policy_id) AS _first_start FROM policies)"
)
"""Every term of every policy (``bronze.policies`` keeps one row per term), with the next term's start."""


def policy_term_of(claim: str, term: str) -> str:
    """Join condition: the term of ``POLICY_TERMS`` a claim is judged against: the latest term begun on
    or before its incident (whether or not it still covered it), or the first term when the incident
    is earlier or unknown. So exactly one term per known policy, and a term added after the others
    changes the choice only for incidents on or after its start (which keeps increments exact)."""
    c, t = claim, term
    return (
        f"{c}.policy_id = {t}.policy_id AND CASE WHEN {c}.incident_date IS NULL OR "
        f"{c}.incident_date < {t}._first_start THEN {t}.start_date = {t}._first_start "
        f"ELSE {c}.incident_date >= {t}.start_date AND "
        f"({t}._next_start IS NULL OR {c}.incident_date < {t}._next_start) END"
    )


def _claim_type_fits_product(d: Dialect) -> str:
    pairs = ", ".join(
        d.string_literal(f"{product}:{claim_type}")
        for product, types in CLAIM_TYPES_BY_PRODUCT.items()
        for claim_type in types
    )
    return f"concat(p.product, ':', r.claim_type) IN ({pairs})"


def silver_claims_plan(d: Dialect, *, incremental: bool = False) -> SqlPlan:
    reported_before_incident = (
        "CASE WHEN reported_at IS NOT NULL AND incident_date IS NOT NULL AND CAST(reported_at AS DATE) < incident_date "
        "THEN concat('out_of_range|reported_at: ', "
        + RAW
        + "reported_at, ' is before incident_date ', "
        + RAW
        + "incident_date) END"
    )
    policy_known = "p.policy_id IS NOT NULL"
    problems = d.compact(
        d.array(
            [
                _unknown("policy_id", policy_known, "policy administration system"),
                _unknown("customer_id", "c.customer_id IS NOT NULL", "customer master"),
                f"CASE WHEN {policy_known} AND p.customer_id <> r.customer_id THEN "
                "concat('inconsistent|customer_id: ', "
                "r.customer_id, ' does not hold policy ', r.policy_id) END",
                f"CASE WHEN {policy_known} AND NOT ({_claim_type_fits_product(d)}) THEN concat('inconsistent|"
                "claim_type: ', r.claim_type, ' is not covered by a ', p.product, ' policy') END",
                f"CASE WHEN {policy_known} AND (r.incident_date < p.start_date OR r.incident_date > p.end_date) "
                "THEN concat('inconsistent|incident_date: ', CAST(r.incident_date AS "
                + d.string_type
                + "), ' is outside the policy term') END",
                f"CASE WHEN {policy_known} AND r.currency <> p.currency THEN concat('inconsistent|currency: ', "
                "r.currency, ' differs from the policy currency ', p.currency) END",
            ]
        )
    )
    joined = (
        "SELECT r.*, p.product, c.segment AS customer_segment, "
        f"{problems} AS _conform_problems FROM ranked r "
        f"LEFT JOIN {POLICY_TERMS} p ON r._rank = 1 AND {policy_term_of('r', 'p')} "
        "LEFT JOIN customers c ON r._rank = 1 AND r.customer_id = c.customer_id"
    )
    columns = [
        *[(rule.name, rule.name) for rule in field_rules(ClaimContract)],
        ("amount_claimed_usd", usd("amount_claimed", "currency")),
        ("product", "product"),
        ("customer_segment", "customer_segment"),
        ("incident_month", "CAST(date_trunc('MONTH', incident_date) AS DATE)"),
        ("report_lag_days", f"CAST({d.days_between('incident_date', 'CAST(reported_at AS DATE)')} AS INT)"),
        ("source", "source"),
        ("ingested_at", "ingested_at"),
    ]
    return _plan(
        d,
        ClaimContract,
        [reported_before_incident],
        joined,
        columns,
        ("silver.claims", "silver.quarantine_claims"),
        {"bronze_events": "bronze.claims", "policies": "bronze.policies", "customers": "bronze.customers"},
        incremental,
    )
