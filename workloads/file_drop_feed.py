"""A simulated day at the office: reference data into PostgreSQL, case files into the claims system's
document store (MongoDB), a file drop of raw events and a fraud-label export into bronze. Landing is
exactly-once per batch, so running it again is harmless."""

from __future__ import annotations

from dataclasses import dataclass

from mdslab.lakehouse import Lakehouse
from mdslab.settings import Settings
from mdslab.workloads import reference
from mdslab.workloads.bronze_landing import LandingResult, land_events, land_labels
from mdslab.workloads.case_files.store import CaseFileChanges, write_case_files
from mdslab.workloads.contracts import Claim, Transaction
from mdslab.workloads.simulator import SimulatedData, SimulationConfig


@dataclass(frozen=True)
class DropReport:
    batch_id: str
    reference_changed: dict[str, int]
    landed: list[LandingResult]
    planted_defects: int
    case_files: CaseFileChanges | None = None


def batch_id_for(config: SimulationConfig) -> str:
    """Same simulation, same id: what makes a re-run recognisable."""
    return (
        f"sim-s{config.seed}-n{config.transactions}-{config.start:%Y%m%d}-d{config.days}"
        f"-i{config.invalid_share:g}-f{config.fraud_share:g}"
    )


def drop_batch(settings: Settings, lake: Lakehouse, data: SimulatedData) -> DropReport:
    batch_id = batch_id_for(data.config)
    changed = reference.upsert(settings.postgres, data.reference_tables())
    case_files = write_case_files(settings.mongo, data.claims, run=data.config.run)
    landed = [
        land_events(
            lake,
            "bronze.transactions",
            data.transactions,
            batch_id=batch_id,
            source="simulator",
            contract_version=Transaction.CONTRACT_VERSION,
        ),
        land_events(
            lake,
            "bronze.claims",
            data.claims,
            batch_id=batch_id,
            source="simulator",
            contract_version=Claim.CONTRACT_VERSION,
        ),
        land_labels(lake, data.fraud_labels, batch_id=batch_id),
    ]
    return DropReport(batch_id, changed, landed, data.defects.num_rows, case_files)
