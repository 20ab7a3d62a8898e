"""Feeding a simulation through the streaming path: reference data into PostgreSQL, the events
through a sender (the API or Kafka), the fraud-label export into bronze (labels come from case
management in batches, not from the card stream)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from mdslab.errors import ServiceUnavailableError
from mdslab.lakehouse import Lakehouse
from mdslab.settings import Settings
from mdslab.workloads import reference
from mdslab.workloads.bronze_landing import LandingResult, land_labels
from mdslab.workloads.case_files.store import write_case_files
from mdslab.workloads.file_drop_feed import batch_id_for
from mdslab.workloads.ingestion.sender import SendReport, Target, send_events
from mdslab.workloads.simulator import SimulatedData

LABELS_TABLE = "bronze.fraud_labels"


@dataclass(frozen=True)
class FeedReport:
    batch_id: str
    reference_changed: dict[str, int]
    sent: SendReport | None  # None: this simulation was fed before and was not sent again
    labels: LandingResult
    planted_defects: int


def already_fed(lake: Lakehouse, data: SimulatedData) -> bool:
    """Whether this simulation went through before: its labels land last, once the events are sent."""
    return lake.transaction_version(LABELS_TABLE, f"landing:{batch_id_for(data.config)}") is not None


def feed_simulation(
    settings: Settings,
    lake: Lakehouse,
    data: SimulatedData,
    target: Target,
    *,
    rate: float | None = None,
    batch_size: int = 500,
    resend: bool = True,
    on_progress: Callable[[SendReport], None] | None = None,
) -> FeedReport:
    """Reference data, then every event through ``target``, then the labels. With ``resend`` False a
    simulation that was fed before is not sent again (what makes re-running the demo cheap)."""
    batch_id = batch_id_for(data.config)
    skip = not resend and already_fed(lake, data)
    changed = reference.upsert(settings.postgres, data.reference_tables())
    write_case_files(settings.mongo, data.claims, run=data.config.run)  # the claims system's own store
    sent = None
    if not skip:
        sent = send_events(
            target, data.transactions, data.claims, rate=rate, batch_size=batch_size, on_progress=on_progress
        )
    if sent is not None and (sent.stopped or sent.total("failed")):
        # Labels of events that arrived only; under a batch id of their own, so the run is not taken for
        # fed (a re-run sends it again; copies of what arrived are quarantined as duplicates).
        delivered = pc.is_in(data.fraud_labels.column("event_id"), pa.array(sorted(sent.delivered_ids), pa.string()))
        land_labels(lake, data.fraud_labels.filter(delivered), batch_id=f"{batch_id}:partial")
        raise DeliveryError(
            f"{'stopped: ' + sent.stopped + '; ' if sent.stopped else ''}{sent.total('accepted'):,} of "
            f"{sent.total('sent'):,} events sent were accepted, {sent.total('failed'):,} failed, "
            f"{len(data.transactions) + len(data.claims) - sum(sent.sent.values()):,} not sent; labels landed "
            "for delivered events only. Check `mdslab status`, then run again"
        )
    labels = land_labels(lake, data.fraud_labels, batch_id=batch_id)
    return FeedReport(batch_id, changed, sent, labels, data.defects.num_rows)


class DeliveryError(ServiceUnavailableError):
    """Events did not reach the broker (or the API); the counts say how many."""
