"""The event types that travel through Kafka: their contract, topic, partition key and bronze table.

One place, so the API, the consumer and the simulator's senders agree on the wire format: the value
is the event's JSON document, the key is the id that keeps one entity's events in order (customer for
transactions, policy for claims), and headers name the contract and its version.
"""

from __future__ import annotations

from dataclasses import dataclass

from mdslab.workloads.contracts import Claim, Contract, Transaction

TRANSACTIONS_TOPIC = "transactions"  # before the prefix (MDSLAB_KAFKA__TOPIC_PREFIX), as Topics applies it
CLAIMS_TOPIC = "claims"
DEAD_LETTER_TOPIC = "dead-letters"
DEAD_LETTER_TABLE = "bronze.dead_letters"  # every topic's poison messages, with their error
CONTRACT_HEADER = "contract"
CONTRACT_VERSION_HEADER = "contract_version"


@dataclass(frozen=True)
class EventType:
    name: str
    contract: type[Contract]
    topic: str
    key_field: str
    bronze_table: str

    @property
    def headers(self) -> list[tuple[str, str | bytes | None]]:
        return [
            (CONTRACT_HEADER, self.contract.CONTRACT_NAME.encode()),
            (CONTRACT_VERSION_HEADER, self.contract.CONTRACT_VERSION.encode()),
        ]


TRANSACTIONS = EventType("transactions", Transaction, TRANSACTIONS_TOPIC, "customer_id", "bronze.transactions")
CLAIMS = EventType("claims", Claim, CLAIMS_TOPIC, "policy_id", "bronze.claims")
EVENT_TYPES: tuple[EventType, ...] = (TRANSACTIONS, CLAIMS)


@dataclass(frozen=True)
class Topics:
    """The topic names on one cluster: the base names behind ``KafkaSettings.topic_prefix``."""

    prefix: str = ""

    def of(self, event_type: EventType) -> str:
        return self.prefix + event_type.topic

    @property
    def events(self) -> list[str]:
        return [self.of(event_type) for event_type in EVENT_TYPES]

    @property
    def dead_letters(self) -> str:
        return self.prefix + DEAD_LETTER_TOPIC

    def event_type(self, topic: str) -> EventType:
        for event_type in EVENT_TYPES:
            if self.of(event_type) == topic:
                return event_type
        raise KeyError(f"no event type is published on topic {topic!r}")


def header_value(headers: list[tuple[str, bytes | None]] | None, name: str) -> str | None:
    for key, value in headers or []:
        if key == name and value is not None:
            return value.decode("utf-8", errors="replace")
    return None
