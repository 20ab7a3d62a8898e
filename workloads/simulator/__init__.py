"""Seeded, vectorised simulator of card transactions, insurance claims and their reference data.

``simulate(SimulationConfig(...))`` returns Arrow tables: valid reference data, raw event streams
(``event_id``, JSON ``payload``) with planted defects, fraud labels and the list of planted defects.
"""

from mdslab.workloads.simulator.config import DefectKind, DefectMix, SimulationConfig
from mdslab.workloads.simulator.defects import DEFECTS_SCHEMA
from mdslab.workloads.simulator.simulate import FRAUD_LABELS_SCHEMA, SimulatedData, simulate

__all__ = [
    "DEFECTS_SCHEMA",
    "FRAUD_LABELS_SCHEMA",
    "DefectKind",
    "DefectMix",
    "SimulatedData",
    "SimulationConfig",
    "simulate",
]
