"""Every table of the medallion lake: bronze (raw, as received), silver (typed, deduplicated,
conformed, plus quarantine), gold (marts and features).

Silver columns that come from a contract take their type and description from it, so a contract
change shows up here without a second hand-written schema. The lab's :class:`Lakehouse` over these
tables is made here too (:func:`lakehouse`), for every floor that reads or writes the lake.
"""

from __future__ import annotations

import dataclasses

import pyarrow as pa
from pydantic import BaseModel

from mdslab.lakehouse import Lakehouse, Layer, TableRegistry, TableSpec
from mdslab.settings import Settings
from mdslab.workloads.contracts import Claim as ClaimContract
from mdslab.workloads.contracts import ColumnKind, Contract, Customer, FraudLabel, Merchant, Policy, field_rules
from mdslab.workloads.contracts import Transaction as TransactionContract

UTC_TS = pa.timestamp("us", tz="UTC")

ARROW_TYPES: dict[ColumnKind, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": UTC_TS,
}


def contract_fields(model: type[BaseModel]) -> tuple[list[pa.Field], dict[str, str]]:
    """Arrow fields (required contract fields are non-nullable) and column docs for a contract."""
    rules = field_rules(model)
    fields = [pa.field(rule.name, ARROW_TYPES[rule.kind], nullable=not rule.required) for rule in rules]
    return fields, {rule.name: rule.description for rule in rules if rule.description}


def contract_tags(model: type[BaseModel]) -> dict[str, tuple[str, ...]]:
    """The classification each field of a contract declares; every field is listed, an unclassified one
    with no tag, so lineage does not tag a column its contract describes (see lineage.classification)."""
    return {rule.name: (rule.classification,) if rule.classification else () for rule in field_rules(model)}


def _spec(
    name: str,
    layer: Layer,
    path: str,
    fields: list[pa.Field],
    description: str,
    docs: dict[str, str] | None = None,
    *,
    partition_by: tuple[str, ...] = (),
    key: tuple[str, ...] = (),
) -> TableSpec:
    return TableSpec(
        name, layer, path, pa.schema(fields), description, partition_by=partition_by, key=key, column_docs=docs or {}
    )


# --- bronze: what arrived, untouched ---------------------------------------------------------------

RAW_EVENT_FIELDS = [
    pa.field("event_id", pa.string()),
    pa.field("payload", pa.string(), nullable=False),
    pa.field("contract_version", pa.string()),
    pa.field("source", pa.string(), nullable=False),
    pa.field("batch_id", pa.string()),
    pa.field("ingested_at", UTC_TS, nullable=False),
    pa.field("kafka_topic", pa.string()),
    pa.field("kafka_partition", pa.int32()),
    pa.field("kafka_offset", pa.int64()),
    pa.field("kafka_timestamp", UTC_TS),
    pa.field("ingest_date", pa.date32(), nullable=False),
]
RAW_EVENT_DOCS = {
    "event_id": "event_id as the producer sent it; null when the payload had none (or was not JSON).",
    "payload": "The event document exactly as received (JSON text); schema-on-read in silver.",
    "contract_version": "Contract version the producer declared.",
    "source": "Where it came from: 'batch:<name>' for file drops, 'kafka' for the stream.",
    "batch_id": "Landing batch, for file drops; exactly-once per batch.",
    "ingested_at": "When the lake received the event (UTC).",
    "kafka_offset": "Kafka offset (stream ingestion only); with topic and partition, the message's address.",
}

DEAD_LETTER_FIELDS = [
    pa.field("kafka_topic", pa.string(), nullable=False),
    pa.field("kafka_partition", pa.int32(), nullable=False),
    pa.field("kafka_offset", pa.int64(), nullable=False),
    pa.field("kafka_timestamp", UTC_TS),
    pa.field("kafka_key", pa.string()),
    pa.field("payload", pa.string(), nullable=False),
    pa.field("contract", pa.string(), nullable=False),
    pa.field("contract_version", pa.string()),
    pa.field("error_type", pa.string(), nullable=False),
    pa.field("error", pa.string(), nullable=False),
    pa.field("ingested_at", UTC_TS, nullable=False),
    pa.field("ingest_date", pa.date32(), nullable=False),
]
DEAD_LETTER_DOCS = {
    "payload": "The message value as received (UTF-8; undecodable bytes replaced).",
    "contract": "Contract the topic carries (e.g. transaction).",
    "contract_version": "Contract version the producer declared in the message headers, if any.",
    "error_type": "not_json, not_an_object, contract_violation or unsupported_version.",
    "error": "Every problem in one line: field and reason.",
}


CASE_FILE_FIELDS = [
    pa.field("document_id", pa.string(), nullable=False),
    pa.field("operation", pa.string(), nullable=False),
    pa.field("document", pa.string()),
    pa.field("source_updated_at", UTC_TS),
    pa.field("source", pa.string(), nullable=False),
    pa.field("extract_run", pa.int64(), nullable=False),
    pa.field("extracted_at", UTC_TS, nullable=False),
    pa.field("ingest_date", pa.date32(), nullable=False),
]
CASE_FILE_DOCS = {
    "document_id": "The document's _id in the source collection (the claim id).",
    "operation": "upsert (the document as it is now) or delete (it is gone from the source: a tombstone).",
    "document": "The whole document as MongoDB Extended JSON (relaxed), exactly as read; null for a delete.",
    "source_updated_at": "The document's updated_at in the source: with document_id, the extraction watermark.",
    "source": "Where it was read: mongo:<database>.<collection>.",
    "extract_run": "The extraction that wrote the row (its number is recorded in the same Delta commit).",
    "extracted_at": "When the extraction read the source (UTC).",
}


def _reference_fields(model: type[BaseModel]) -> tuple[list[pa.Field], dict[str, str]]:
    fields, docs = contract_fields(model)
    return [*fields, pa.field("extracted_at", UTC_TS, nullable=False)], {
        **docs,
        "extracted_at": "When the snapshot was read from PostgreSQL (UTC).",
    }


def _bronze() -> list[TableSpec]:
    specs = [
        _spec(
            "bronze.transactions",
            Layer.BRONZE,
            "financial_data_delta",
            RAW_EVENT_FIELDS,
            "Card transactions as received (raw JSON payloads), append-only.",
            RAW_EVENT_DOCS,
            partition_by=("ingest_date",),
        ),
        _spec(
            "bronze.claims",
            Layer.BRONZE,
            "insurance_data_delta",
            RAW_EVENT_FIELDS,
            "Insurance claim events as received (raw JSON payloads), append-only.",
            RAW_EVENT_DOCS,
            partition_by=("ingest_date",),
        ),
    ]
    specs.append(
        _spec(
            "bronze.dead_letters",
            Layer.BRONZE,
            "dead_letters_delta",
            DEAD_LETTER_FIELDS,
            "Stream messages that failed their contract (bad JSON, missing or invalid fields), with the "
            "error; also published to the dead-letter topic. Exactly once per Kafka offset.",
            DEAD_LETTER_DOCS,
            partition_by=("ingest_date",),
        )
    )
    label_fields, label_docs = contract_fields(FraudLabel)
    specs.append(
        _spec(
            "bronze.fraud_labels",
            Layer.BRONZE,
            "fraud_labels_delta",
            [
                *label_fields,
                pa.field("batch_id", pa.string()),
                pa.field("ingested_at", UTC_TS, nullable=False),
            ],
            "Chargeback and investigation outcomes per transaction, from the case-management export.",
            label_docs,
        )
    )
    specs.append(
        _spec(
            "bronze.claim_documents",
            Layer.BRONZE,
            "claim_documents_delta",
            CASE_FILE_FIELDS,
            "Claims case files from the claims system's document store (MongoDB), as stored there: one row per "
            "new or changed document (upsert) or deletion (delete), extracted incrementally, exactly once.",
            CASE_FILE_DOCS,
            partition_by=("ingest_date",),
        )
    )
    for model, table, what in (
        (Customer, "customers", "Customer master"),
        (Merchant, "merchants", "Merchant (card acceptor) master"),
        (Policy, "policies", "Insurance policies, one row per term (a renewal is a new row)"),
    ):
        fields, docs = _reference_fields(model)
        specs.append(
            _spec(
                f"bronze.{table}",
                Layer.BRONZE,
                f"reference/{table}_delta",
                fields,
                f"{what}: the PostgreSQL reference table; rows it gained are appended, a change replaces it.",
                docs,
            )
        )
    return specs


# --- silver: typed, deduplicated, conformed --------------------------------------------------------

QUARANTINE_FIELDS = [
    pa.field("event_id", pa.string()),
    pa.field("payload", pa.string(), nullable=False),
    pa.field("reason_codes", pa.list_(pa.string()), nullable=False),
    pa.field("reasons", pa.list_(pa.string()), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("ingested_at", UTC_TS, nullable=False),
    pa.field("kafka_topic", pa.string()),
    pa.field("kafka_partition", pa.int32()),
    pa.field("kafka_offset", pa.int64()),
]
QUARANTINE_DOCS = {
    "reason_codes": "Machine-readable reasons: missing_field, bad_type, out_of_range, unexpected_field, "
    "malformed_json, duplicate, unknown_reference.",
    "reasons": "One line per problem, naming the field and what was wrong with it.",
}


def _silver() -> list[TableSpec]:
    tx_fields, tx_docs = contract_fields(TransactionContract)
    claim_fields, claim_docs = contract_fields(ClaimContract)
    lineage = [
        pa.field("source", pa.string(), nullable=False),
        pa.field("ingested_at", UTC_TS, nullable=False),
    ]
    return [
        _spec(
            "silver.transactions",
            Layer.SILVER,
            "silver/transactions",
            [
                *tx_fields,
                pa.field("amount_usd", pa.float64(), nullable=False),
                pa.field("event_date", pa.date32(), nullable=False),
                pa.field("event_month", pa.date32(), nullable=False),
                pa.field("local_hour", pa.int32(), nullable=False),
                pa.field("customer_region", pa.string(), nullable=False),
                pa.field("customer_segment", pa.string(), nullable=False),
                pa.field("merchant_category", pa.string(), nullable=False),
                pa.field("merchant_is_online", pa.bool_(), nullable=False),
                pa.field("merchant_region", pa.string(), nullable=False),
                pa.field("distance_from_home_km", pa.float64()),
                *lineage,
            ],
            "Valid card transactions, one row per event_id, typed and joined to customer and merchant.",
            {
                **tx_docs,
                "amount_usd": "amount converted at the lab's fixed FX table (mdslab.workloads.pipeline.fx).",
                "event_date": "UTC date of event_time.",
                "event_month": "First day of event_time's UTC month: the partition column (see docs/design-notes.md).",
                "local_hour": "Hour of day in the customer's home time zone.",
                "distance_from_home_km": "Great-circle distance from the customer's home; null when online.",
            },
            partition_by=("event_month",),
            key=("event_id",),
        ),
        _spec(
            "silver.claims",
            Layer.SILVER,
            "silver/claims",
            [
                *claim_fields,
                pa.field("amount_claimed_usd", pa.float64(), nullable=False),
                pa.field("product", pa.string(), nullable=False),
                pa.field("customer_segment", pa.string(), nullable=False),
                pa.field("incident_month", pa.date32(), nullable=False),
                pa.field("report_lag_days", pa.int32(), nullable=False),
                *lineage,
            ],
            "Valid insurance claims, one row per event_id, typed and joined to policy and customer.",
            {
                **claim_docs,
                "product": "Product of the claimed policy.",
                "incident_month": "First day of the incident's month.",
                "report_lag_days": "Days from incident to report.",
            },
            key=("event_id",),
        ),
        _spec(
            "silver.quarantine_transactions",
            Layer.SILVER,
            "silver/quarantine_transactions",
            QUARANTINE_FIELDS,
            "Transaction events rejected by silver, with every reason; nothing is dropped silently.",
            QUARANTINE_DOCS,
        ),
        _spec(
            "silver.quarantine_claims",
            Layer.SILVER,
            "silver/quarantine_claims",
            QUARANTINE_FIELDS,
            "Claim events rejected by silver, with every reason; nothing is dropped silently.",
            QUARANTINE_DOCS,
        ),
    ]


# --- gold: marts and features ----------------------------------------------------------------------


def _gold() -> list[TableSpec]:
    f64, i64 = pa.float64(), pa.int64()
    return [
        _spec(
            "gold.daily_spend",
            Layer.GOLD,
            "gold/daily_spend",
            [
                pa.field("spend_date", pa.date32(), nullable=False),
                pa.field("customer_id", pa.string(), nullable=False),
                pa.field("merchant_id", pa.string(), nullable=False),
                pa.field("merchant_category", pa.string(), nullable=False),
                pa.field("customer_region", pa.string(), nullable=False),
                pa.field("txn_count", i64, nullable=False),
                pa.field("total_usd", f64, nullable=False),
                pa.field("avg_usd", f64, nullable=False),
                pa.field("max_usd", f64, nullable=False),
            ],
            "Daily spend per customer and merchant (UTC days, USD).",
            key=("spend_date", "customer_id", "merchant_id"),
        ),
        _spec(
            "gold.fraud_features",
            Layer.GOLD,
            "gold/fraud_features",
            [
                pa.field("event_id", pa.string(), nullable=False),
                pa.field("customer_id", pa.string(), nullable=False),
                pa.field("merchant_id", pa.string(), nullable=False),
                pa.field("event_time", UTC_TS, nullable=False),
                pa.field("amount_usd", f64, nullable=False),
                pa.field("merchant_category", pa.string(), nullable=False),
                pa.field("channel", pa.string(), nullable=False),
                pa.field("local_hour", pa.int32(), nullable=False),
                pa.field("distance_from_home_km", f64),
                pa.field("txn_count_1h", i64, nullable=False),
                pa.field("txn_count_24h", i64, nullable=False),
                pa.field("small_online_count_1h", i64, nullable=False),
                pa.field("distinct_merchants_24h", i64, nullable=False),
                pa.field("avg_amount_24h", f64),
                pa.field("avg_amount_30d", f64),
                pa.field("amount_to_avg_30d", f64),
                pa.field("seconds_since_prev", f64),
                pa.field("km_from_prev_located", f64),
                pa.field("is_new_merchant", pa.bool_(), nullable=False),
                pa.field("label_is_fraud", pa.bool_()),
                pa.field("label_pattern", pa.string()),
            ],
            "One row per transaction with features computed only from the same customer's strictly "
            "earlier transactions (point-in-time correct), and the fraud label when known.",
            {
                "txn_count_1h": "Customer's transactions in the hour before this one (this one excluded).",
                "small_online_count_1h": "Of those, online ones under 5 USD (card-testing signal).",
                "distinct_merchants_24h": "Distinct merchants in the customer's previous 24 hours.",
                "avg_amount_24h": "Mean USD amount of the previous 24 hours; null without history.",
                "amount_to_avg_30d": "This amount over the previous 30 days' mean; null without history.",
                "km_from_prev_located": "Distance from the previous in-person transaction.",
                "is_new_merchant": "First transaction of this customer at this merchant.",
                "label_is_fraud": "Chargeback/investigation outcome; the training target, not a feature.",
            },
            key=("event_id",),
        ),
        _spec(
            "gold.claims_monthly",
            Layer.GOLD,
            "gold/claims_monthly",
            [
                pa.field("incident_month", pa.date32(), nullable=False),
                pa.field("region", pa.string(), nullable=False),
                pa.field("product", pa.string(), nullable=False),
                pa.field("claim_type", pa.string(), nullable=False),
                pa.field("claims_count", i64, nullable=False),
                pa.field("total_claimed_usd", f64, nullable=False),
                pa.field("avg_claimed_usd", f64, nullable=False),
                pa.field("approved_count", i64, nullable=False),
                pa.field("rejected_count", i64, nullable=False),
                pa.field("open_count", i64, nullable=False),
                pa.field("approval_rate", f64),
                pa.field("avg_report_lag_days", f64, nullable=False),
            ],
            "Claims by incident month, region, product and claim type (USD).",
            {"approval_rate": "approved / (approved + rejected); null while none is decided."},
            key=("incident_month", "region", "product", "claim_type"),
        ),
        _spec(
            "gold.claims_features",
            Layer.GOLD,
            "gold/claims_features",
            [
                pa.field("event_id", pa.string(), nullable=False),
                pa.field("claim_id", pa.string(), nullable=False),
                pa.field("policy_id", pa.string(), nullable=False),
                pa.field("customer_id", pa.string(), nullable=False),
                pa.field("reported_at", UTC_TS, nullable=False),
                pa.field("product", pa.string()),
                pa.field("claim_type", pa.string(), nullable=False),
                pa.field("region", pa.string(), nullable=False),
                pa.field("customer_segment", pa.string()),
                pa.field("report_lag_days", pa.int32()),
                pa.field("coverage_limit_usd", f64),
                pa.field("deductible_usd", f64),
                pa.field("annual_premium_usd", f64),
                pa.field("prior_claims_policy_365d", i64, nullable=False),
                pa.field("prior_claims_customer_365d", i64, nullable=False),
                pa.field("prior_large_losses_customer", i64, nullable=False),
                pa.field("amount_claimed_usd", f64, nullable=False),
                pa.field("label_large_loss", pa.bool_(), nullable=False),
            ],
            "One row per claim with what is known when it is reported (claim, policy terms in USD, the "
            "policy's and customer's strictly earlier claims) and whether it became a large loss.",
            {
                "prior_claims_policy_365d": "Claims on the same policy reported in the 365 days before this one.",
                "prior_large_losses_customer": "The customer's earlier claims of at least 10,000 USD.",
                "amount_claimed_usd": "What was claimed: the label's source, not a feature.",
                "label_large_loss": "amount_claimed_usd >= 10,000: the triage model's target.",
            },
            key=("event_id",),
        ),
        _spec(
            "gold.fraud_scores",
            Layer.GOLD,
            "gold/fraud_scores",
            [
                pa.field("event_id", pa.string(), nullable=False),
                pa.field("customer_id", pa.string(), nullable=False),
                pa.field("event_time", UTC_TS, nullable=False),
                pa.field("fraud_score", f64, nullable=False),
                pa.field("model_name", pa.string(), nullable=False),
                pa.field("model_version", i64, nullable=False),
                pa.field("scored_at", UTC_TS, nullable=False),
            ],
            "Fraud probability of every transaction in gold.fraud_features by the champion model "
            "(`mdslab score fraud`); replaced when the features or the champion change.",
            {"fraud_score": "Probability of fraud from the registered champion model (MLflow)."},
            key=("event_id",),
        ),
    ]


#: Built by scoring from published features, after the gate: readers see its latest version.
UNAUDITED_GOLD = frozenset({"gold.fraud_scores"})


#: The team that maintains each domain's tables (the rest: the data platform team).
OWNERS = {
    "bronze.customers": "customer-data",
    "bronze.merchants": "payments",
    "bronze.policies": "claims",
    "bronze.fraud_labels": "fraud-analytics",
    "bronze.claim_documents": "claims",
    "gold.daily_spend": "payments",
    "gold.fraud_features": "fraud-analytics",
    "gold.fraud_scores": "fraud-analytics",
    "gold.claims_monthly": "claims",
    "gold.claims_features": "claims",
}


#: The contract whose fields a table's columns are (the catalog shows it with its version).
TABLE_CONTRACTS: dict[str, type[Contract]] = {
    "bronze.customers": Customer,
    "bronze.merchants": Merchant,
    "bronze.policies": Policy,
    "bronze.fraud_labels": FraudLabel,
    "silver.transactions": TransactionContract,
    "silver.claims": ClaimContract,
}
#: Classifications declared where a table's columns are defined (its contract, or a raw record); every
#: other column is classified by what it is derived from (mdslab.workloads.lineage.classification).
_RAW: dict[str, tuple[str, ...]] = {"payload": ("pii.raw",)}
DECLARED_TAGS: dict[str, dict[str, tuple[str, ...]]] = {
    "bronze.transactions": _RAW,
    "bronze.claims": _RAW,
    "bronze.dead_letters": _RAW,
    "bronze.claim_documents": {"document": ("pii.raw",)},
    **{table: contract_tags(model) for table, model in TABLE_CONTRACTS.items()},
}


def _governed(spec: TableSpec) -> TableSpec:
    """Silver and gold pipeline outputs are published by the quality gate (write-audit-publish); each
    table has its owner and its declared column classifications."""
    audited = spec.layer is not Layer.BRONZE and spec.name not in UNAUDITED_GOLD
    return dataclasses.replace(
        spec,
        audited=audited,
        owner=OWNERS.get(spec.name, spec.owner),
        column_tags=DECLARED_TAGS.get(spec.name, spec.column_tags),
    )


def build_registry() -> TableRegistry:
    return TableRegistry([_governed(spec) for spec in (*_bronze(), *_silver(), *_gold())])


def lakehouse(settings: Settings) -> Lakehouse:
    """The lab's lake: a :class:`Lakehouse` over the tables registered here, with the settings' storage."""
    return Lakehouse.from_settings(settings, build_registry())
