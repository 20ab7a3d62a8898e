"""Data contracts: one frozen, closed Pydantic model per entity or event type, each with a version.

The ingestion API validates events with these models, the JSON Schemas exported from them are the
documents producers code against, and ``field_rules`` turns them into column checks for the batch
pipeline, so a rule is written once, here. Bump ``CONTRACT_VERSION``'s major on a breaking change
(a field removed, renamed, retyped or tightened) and its minor when a field is added.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, ClassVar, Literal, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, model_validator

from mdslab.workloads.contracts.vocabulary import (
    Channel,
    ClaimStatus,
    ClaimType,
    Currency,
    FraudPattern,
    MerchantCategory,
    Product,
    Segment,
)

#: Events dated outside [EARLIEST_EVENT_TIME, LATEST_EVENT_TIME) come from broken clocks or defaults
#: such as the Unix epoch; fixed bounds (not "now") keep validation reproducible.
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_EVENT_TIME = datetime(2100, 1, 1, tzinfo=UTC)
MAX_TRANSACTION_AMOUNT = 50_000.0
MAX_CLAIM_AMOUNT = 2_000_000.0
MAX_NOTES_LENGTH = 4_000

ContractKind = Literal["reference", "event", "label"]


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcTimestamp = Annotated[
    AwareDatetime,
    Field(ge=EARLIEST_EVENT_TIME, lt=LATEST_EVENT_TIME),
    AfterValidator(_as_utc),
]
EventId = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="Producer-assigned UUID (lower-case, canonical form); the deduplication key.",
    ),
]
CustomerId = Annotated[str, Field(pattern=r"^C\d{7}$", description="Customer key, 'C' + 7 digits.")]
MerchantId = Annotated[str, Field(pattern=r"^M\d{6}$", description="Merchant key, 'M' + 6 digits.")]
PolicyId = Annotated[str, Field(pattern=r"^P\d{7}$", description="Policy key, 'P' + 7 digits.")]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 country code.")]
Region = Annotated[
    str,
    Field(min_length=2, max_length=32, description="Sales region, e.g. 'US-Northeast', 'UK', 'DE'."),
]
City = Annotated[str, Field(min_length=1, max_length=80, description="City name in English.")]
TimeZone = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z_]+/[A-Za-z_]+$",
        description="IANA time zone of the place, to turn UTC times into local hours of day.",
    ),
]


def classified(tag: str) -> dict[str, JsonValue]:
    """A field's data classification (JSON Schema ``x-classification``): the catalog shows it and lineage
    carries it to every column derived from the field. Taxonomy: ``pii.name``, ``pii.email``,
    ``pii.geo`` (a person's location), ``pii.card``, ``pii.device``, ``pii.free_text`` (may name people),
    ``pii.raw`` (a whole raw record, any of the above)."""
    return {"x-classification": tag}


class Contract(BaseModel):
    """Common base: immutable, and unknown fields are errors (a producer typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    CONTRACT_NAME: ClassVar[str]
    CONTRACT_VERSION: ClassVar[str]
    CONTRACT_KIND: ClassVar[ContractKind]


class Customer(Contract):
    """A bank and insurance customer (reference data, loaded from the customer master)."""

    CONTRACT_NAME: ClassVar[str] = "customer"
    CONTRACT_VERSION: ClassVar[str] = "1.0.0"
    CONTRACT_KIND: ClassVar[ContractKind] = "reference"

    customer_id: CustomerId
    full_name: str = Field(
        min_length=1,
        max_length=120,
        description="Given name and family name.",
        json_schema_extra=classified("pii.name"),
    )
    email: str = Field(
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$",
        description="Contact e-mail address.",
        json_schema_extra=classified("pii.email"),
    )
    city: City
    region: Region
    country: CountryCode
    timezone: TimeZone
    segment: Segment = Field(description="Commercial segment: retail, premium or business.")
    signup_date: date = Field(description="Day the customer relationship started.")
    home_lat: float = Field(
        ge=-90, le=90, description="Latitude of the home address (WGS84).", json_schema_extra=classified("pii.geo")
    )
    home_lon: float = Field(
        ge=-180, le=180, description="Longitude of the home address (WGS84).", json_schema_extra=classified("pii.geo")
    )


class Merchant(Contract):
    """A card acceptor (reference data from the acquirer); online merchants carry their seat's place."""

    CONTRACT_NAME: ClassVar[str] = "merchant"
    CONTRACT_VERSION: ClassVar[str] = "1.0.0"
    CONTRACT_KIND: ClassVar[ContractKind] = "reference"

    merchant_id: MerchantId
    name: str = Field(min_length=1, max_length=120, description="Trading name.")
    category: MerchantCategory = Field(description="Business category, derived from the MCC.")
    mcc: str = Field(pattern=r"^\d{4}$", description="ISO 18245 merchant category code.")
    city: City
    region: Region
    country: CountryCode
    timezone: TimeZone
    lat: float = Field(ge=-90, le=90, description="Latitude of the store (or seat, if online).")
    lon: float = Field(ge=-180, le=180, description="Longitude of the store (or seat, if online).")
    is_online: bool = Field(description="True for card-not-present (e-commerce) merchants.")


class Policy(Contract):
    """One term of an insurance policy held by a customer (reference data from the policy administration
    system). A renewal is a new row with the same policy_id and the next start_date; terms do not overlap."""

    CONTRACT_NAME: ClassVar[str] = "policy"
    CONTRACT_VERSION: ClassVar[str] = "1.1.0"
    CONTRACT_KIND: ClassVar[ContractKind] = "reference"

    policy_id: PolicyId
    customer_id: CustomerId
    product: Product = Field(description="Line of business: auto, home, health, travel or life.")
    region: Region
    currency: Currency = Field(description="Currency of premium, limits and claims.")
    start_date: date = Field(description="First day of cover of this term (its effective date).")
    end_date: date = Field(description="Last day of cover of this term (inclusive).")
    annual_premium: float = Field(gt=0, le=1_000_000, description="Yearly premium in the policy currency.")
    coverage_limit: float = Field(gt=0, le=100_000_000, description="Maximum payout per claim.")
    deductible: float = Field(ge=0, description="Amount the policyholder bears per claim.")

    @model_validator(mode="after")
    def _consistent_terms(self) -> Self:
        if self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        if self.deductible >= self.coverage_limit:
            raise ValueError(f"deductible {self.deductible} must be below coverage_limit {self.coverage_limit}")
        return self


class Transaction(Contract):
    """A card transaction as authorised by the card processor (event)."""

    CONTRACT_NAME: ClassVar[str] = "transaction"
    CONTRACT_VERSION: ClassVar[str] = "1.0.0"
    CONTRACT_KIND: ClassVar[ContractKind] = "event"

    event_id: EventId
    customer_id: CustomerId
    merchant_id: MerchantId
    amount: float = Field(
        gt=0, le=MAX_TRANSACTION_AMOUNT, description="Amount in `currency`, positive, at most 50,000."
    )
    currency: Currency = Field(description="ISO 4217 currency of the amount.")
    event_time: UtcTimestamp = Field(description="When the card was used, UTC; 2000-01-01 <= t < 2100-01-01.")
    channel: Channel = Field(description="How the card was used: card_present, contactless, online or atm.")
    card_last4: str = Field(
        pattern=r"^\d{4}$", description="Last four digits of the card number.", json_schema_extra=classified("pii.card")
    )
    lat: float | None = Field(
        default=None,
        ge=-90,
        le=90,
        description="Latitude of the terminal; null for online payments.",
        json_schema_extra=classified("pii.geo"),
    )
    lon: float | None = Field(
        default=None,
        ge=-180,
        le=180,
        description="Longitude of the terminal; null for online payments.",
        json_schema_extra=classified("pii.geo"),
    )
    device_id: str | None = Field(
        default=None,
        max_length=64,
        description="Device fingerprint for online and mobile-wallet payments; null otherwise.",
        json_schema_extra=classified("pii.device"),
    )


class Claim(Contract):
    """An insurance claim as filed or updated in the claims system (event)."""

    CONTRACT_NAME: ClassVar[str] = "claim"
    CONTRACT_VERSION: ClassVar[str] = "1.0.0"
    CONTRACT_KIND: ClassVar[ContractKind] = "event"

    event_id: EventId
    claim_id: str = Field(pattern=r"^CL\d{8}$", description="Claim key, 'CL' + 8 digits.")
    policy_id: PolicyId
    customer_id: CustomerId
    claim_type: ClaimType = Field(description="Peril or benefit claimed; must fit the policy product.")
    amount_claimed: float = Field(
        gt=0, le=MAX_CLAIM_AMOUNT, description="Amount claimed in `currency`, positive, at most 2,000,000."
    )
    currency: Currency = Field(description="ISO 4217 currency of the amount (the policy currency).")
    incident_date: date = Field(
        ge=EARLIEST_EVENT_TIME.date(), description="Day of the loss; on or before the day it was reported."
    )
    reported_at: UtcTimestamp = Field(description="When the claim was reported, UTC; not before incident_date.")
    region: Region
    status: ClaimStatus = Field(description="Handling status: open, under_review, approved or rejected.")
    adjuster_notes: str = Field(
        min_length=1,
        max_length=MAX_NOTES_LENGTH,
        description="Free-text notes of the claims adjuster.",
        json_schema_extra=classified("pii.free_text"),
    )

    @model_validator(mode="after")
    def _reported_after_incident(self) -> Self:
        if self.reported_at.date() < self.incident_date:
            raise ValueError(f"reported_at {self.reported_at.isoformat()} is before incident_date {self.incident_date}")
        return self


class FraudLabel(Contract):
    """Outcome of a chargeback or fraud investigation for one transaction; arrives after the event."""

    CONTRACT_NAME: ClassVar[str] = "fraud_label"
    CONTRACT_VERSION: ClassVar[str] = "1.0.0"
    CONTRACT_KIND: ClassVar[ContractKind] = "label"

    event_id: EventId = Field(description="event_id of the labelled transaction.")
    is_fraud: bool = Field(description="True when the transaction was confirmed fraudulent.")
    fraud_pattern: FraudPattern | None = Field(
        default=None, description="Modus operandi found by the investigation; null for legitimate ones."
    )
    reported_at: UtcTimestamp = Field(description="When the label was issued, UTC.")

    @model_validator(mode="after")
    def _pattern_only_for_fraud(self) -> Self:
        if self.fraud_pattern is not None and not self.is_fraud:
            raise ValueError("fraud_pattern is set but is_fraud is false")
        return self


#: Every contract by name, in dependency order (reference data before the events that point to it).
CONTRACTS: dict[str, type[Contract]] = {
    model.CONTRACT_NAME: model for model in (Customer, Merchant, Policy, Transaction, Claim, FraudLabel)
}
