"""Closed vocabularies shared by the contracts, the simulator and the pipeline.

They are ``StrEnum``s so that a value is a plain string on the wire (JSON, Arrow, SQL) while the code
still gets a typo-proof name; ``field_rules`` turns them into allowed-value lists for column checks.
"""

from __future__ import annotations

from enum import StrEnum


class Segment(StrEnum):
    RETAIL = "retail"
    PREMIUM = "premium"
    BUSINESS = "business"


class Currency(StrEnum):
    USD = "USD"
    EUR = "EUR"
    GBP = "GBP"


class Channel(StrEnum):
    CARD_PRESENT = "card_present"
    CONTACTLESS = "contactless"
    ONLINE = "online"
    ATM = "atm"


class MerchantCategory(StrEnum):
    GROCERY = "grocery"
    RESTAURANTS = "restaurants"
    FAST_FOOD = "fast_food"
    FUEL = "fuel"
    PHARMACY = "pharmacy"
    CLOTHING = "clothing"
    ELECTRONICS = "electronics"
    JEWELRY = "jewelry"
    TRAVEL = "travel"
    ENTERTAINMENT = "entertainment"
    ONLINE_RETAIL = "online_retail"
    GAMBLING = "gambling"
    UTILITIES = "utilities"
    TRANSPORT = "transport"
    CASH_WITHDRAWAL = "cash_withdrawal"


class Product(StrEnum):
    AUTO = "auto"
    HOME = "home"
    HEALTH = "health"
    TRAVEL = "travel"
    LIFE = "life"


class ClaimType(StrEnum):
    COLLISION = "collision"
    THEFT = "theft"
    GLASS = "glass"
    LIABILITY = "liability"
    WATER_DAMAGE = "water_damage"
    FIRE = "fire"
    STORM = "storm"
    MEDICAL = "medical"
    HOSPITALIZATION = "hospitalization"
    TRAVEL_DELAY = "travel_delay"
    BAGGAGE_LOSS = "baggage_loss"
    DEATH = "death"
    CRITICAL_ILLNESS = "critical_illness"


class ClaimStatus(StrEnum):
    OPEN = "open"
    UNDER_REVIEW = "under_review"
    APPROVED = "approved"
    REJECTED = "rejected"


class FraudPattern(StrEnum):
    CARD_TESTING = "card_testing"
    GEO_JUMP = "geo_jump"
    NIGHT_SPREE = "night_spree"
    MERCHANT_BURST = "merchant_burst"


#: Which claim types a policy product can produce; a claim outside its product's list is inconsistent.
CLAIM_TYPES_BY_PRODUCT: dict[Product, tuple[ClaimType, ...]] = {
    Product.AUTO: (ClaimType.COLLISION, ClaimType.THEFT, ClaimType.GLASS, ClaimType.LIABILITY),
    Product.HOME: (
        ClaimType.WATER_DAMAGE,
        ClaimType.FIRE,
        ClaimType.STORM,
        ClaimType.THEFT,
        ClaimType.LIABILITY,
    ),
    Product.HEALTH: (ClaimType.MEDICAL, ClaimType.HOSPITALIZATION),
    Product.TRAVEL: (ClaimType.TRAVEL_DELAY, ClaimType.BAGGAGE_LOSS, ClaimType.MEDICAL),
    Product.LIFE: (ClaimType.DEATH, ClaimType.CRITICAL_ILLNESS),
}
