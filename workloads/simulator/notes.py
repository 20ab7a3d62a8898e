"""Adjuster notes: 2-5 sentences per claim, built from templates filled with concrete facts.

The notes are the corpus of the RAG deep dive, so they name things a user can ask about (contractors,
garages, hospitals, police report numbers, flights), restate the claimed amount and incident date
exactly as the structured fields hold them, and sometimes record doubts ("inconsistent statements",
"prior claim for the same item") that a fraud analyst would search for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

from mdslab.workloads.contracts import ClaimStatus, ClaimType
from mdslab.workloads.simulator.sampling import BoolArray, FloatArray, IntArray

CONTRACTORS = ("BuildRight Ltd", "AquaFix Plumbing", "Hearth & Home Restorations", "Keystone Roofing",
               "DryOut Services", "Meridian Builders", "Oakline Carpentry", "BlueFlame Heating")  # fmt: skip
GARAGES = ("Northside Auto Body", "Meyer Karosserie GmbH", "Carrosserie Dupont", "Precision Collision Center",
           "Highway Motors", "Quick Glass Repair")  # fmt: skip
HOSPITALS = ("St. Mary's General Hospital", "Riverside Medical Center", "Lakeside Clinic",
             "Mercy Regional Hospital", "Clinique Saint-Louis", "Ospedale San Marco")  # fmt: skip
AIRLINES = (("SkyWays", "SW"), ("Atlantic Air", "AA"), ("EuroJet", "EJ"), ("Northern Wings", "NW"))

INCIDENTS: dict[ClaimType, tuple[str, ...]] = {
    ClaimType.COLLISION: ("Vehicle was rear-ended at a traffic light on {date}.",
                          "Policyholder collided with a parked van while reversing on {date}.",
                          "Side impact at a junction on {date}; the other driver admitted fault."),
    ClaimType.THEFT: ("Break-in reported on {date}; a laptop and jewellery were taken.",
                      "Vehicle was stolen from the street overnight on {date}.",
                      "Bicycle and power tools stolen from a locked garage on {date}."),
    ClaimType.GLASS: ("Windscreen cracked by a stone chip on the motorway on {date}.",),
    ClaimType.LIABILITY: ("A visitor slipped on the icy driveway on {date} and claims compensation.",
                          "Policyholder damaged a third-party vehicle in a car park on {date}."),
    ClaimType.WATER_DAMAGE: ("Water damage in the {room} after {cause} on {date}.",
                             "Leak from {cause} flooded the {room} on {date}."),
    ClaimType.FIRE: ("Fire in the {room} on {date}, caused by {fire_cause}.",
                     "Smoke and fire damage on {date} after {fire_cause}."),
    ClaimType.STORM: ("Storm on {date} tore tiles off the roof and damaged the gutters.",
                      "A tree fell on the garage roof during the storm of {date}."),
    ClaimType.MEDICAL: ("Emergency treatment on {date} for a fractured wrist after a fall.",
                        "Outpatient surgery on {date} following a knee injury."),
    ClaimType.HOSPITALIZATION: ("Admitted on {date} with pneumonia; discharged after {nights} nights.",
                                "Hospital stay of {nights} nights from {date} after an appendectomy."),
    ClaimType.TRAVEL_DELAY: ("Flight {flight} on {date} was delayed by {hours} hours.",
                             "Missed connection on {date} after flight {flight} arrived {hours} hours late."),
    ClaimType.BAGGAGE_LOSS: ("Checked baggage lost on flight {flight} on {date}.",
                             "Suitcase damaged and contents missing after flight {flight} on {date}."),
    ClaimType.DEATH: ("Death of the insured person on {date}; death certificate received.",),
    ClaimType.CRITICAL_ILLNESS: ("Diagnosis of a critical illness confirmed by {hospital} on {date}.",),
}  # fmt: skip
ROOMS = ("kitchen", "bathroom", "basement", "utility room", "living room")
WATER_CAUSES = ("a burst pipe", "a leaking washing machine hose", "a failed water heater", "a blocked drain")
FIRE_CAUSES = ("an electrical fault", "an unattended candle", "a faulty tumble dryer", "a chip-pan fire")
VENDOR_POOL: dict[ClaimType, tuple[str, ...]] = {
    **dict.fromkeys((ClaimType.COLLISION, ClaimType.GLASS), GARAGES),
    **dict.fromkeys((ClaimType.WATER_DAMAGE, ClaimType.FIRE, ClaimType.STORM, ClaimType.THEFT), CONTRACTORS),
    **dict.fromkeys((ClaimType.MEDICAL, ClaimType.HOSPITALIZATION), HOSPITALS),
}
REPAIR_EVIDENCE = ("Estimate from {vendor}: {amount}.", "Invoice from {vendor} for {amount} attached.",
                   "Repair quote by {vendor} totals {amount}.")  # fmt: skip
CARE_EVIDENCE = ("Treatment invoice from {vendor}: {amount}.", "{vendor} billed {amount} for the treatment.")
POLICE = (ClaimType.THEFT, ClaimType.COLLISION, ClaimType.LIABILITY, ClaimType.FIRE)
DOUBTS = ("Statements from the policyholder were inconsistent regarding the time of the incident.",
          "Prior claim for the same item ({earlier}) was settled last year.",
          "Receipts submitted appear altered; referred to the special investigations unit.",
          "Damage pattern looks older than the reported incident date.")  # fmt: skip
OUTCOMES: dict[ClaimStatus, tuple[str, ...]] = {
    ClaimStatus.OPEN: ("Awaiting documents from the policyholder.", "Acknowledged; adjuster to be assigned."),
    ClaimStatus.UNDER_REVIEW: ("Referred for desk review.", "Site visit scheduled for {visit}."),
    ClaimStatus.APPROVED: ("Recommend approval.", "Approved for payment less the {deductible} deductible."),
    ClaimStatus.REJECTED: ("Recommend rejection: loss not covered by the policy wording.",
                           "Rejected: documentation does not support the amount claimed."),
}  # fmt: skip


@dataclass(frozen=True)
class ClaimFacts:
    """Column-wise facts of the claims to describe; each note restates them verbatim."""

    claim_type: tuple[ClaimType, ...]
    status: tuple[ClaimStatus, ...]
    amount: FloatArray
    currency: tuple[str, ...]
    incident_day: IntArray  # days since 1970-01-01
    deductible: FloatArray
    prior_claims: IntArray
    suspicious: BoolArray


def _money(value: float, currency: str) -> str:
    return f"{value:,.0f} {currency}" if value >= 100 else f"{value:,.2f} {currency}"


def adjuster_notes(facts: ClaimFacts, rng: np.random.Generator) -> list[str]:
    """One note per claim; random choices are drawn up front, in bulk, so notes are reproducible."""
    n = len(facts.amount)
    pick: npt.NDArray[np.int64] = rng.integers(0, 1 << 30, (n, 10))
    coin = rng.random((n, 3))
    notes = []
    for i in range(n):
        kind, status, p = facts.claim_type[i], facts.status[i], pick[i]
        day = date(1970, 1, 1) + timedelta(days=int(facts.incident_day[i]))
        airline, code = AIRLINES[p[6] % len(AIRLINES)]
        amount = _money(float(facts.amount[i]), facts.currency[i])
        values = {
            "date": day.isoformat(),
            "room": ROOMS[p[1] % len(ROOMS)],
            "cause": WATER_CAUSES[p[2] % len(WATER_CAUSES)],
            "fire_cause": FIRE_CAUSES[p[2] % len(FIRE_CAUSES)],
            "nights": 2 + p[3] % 9,
            "hours": 3 + p[3] % 20,
            "flight": f"{airline} {code}{100 + p[4] % 9_000}",
            "hospital": HOSPITALS[p[5] % len(HOSPITALS)],
        }
        templates = INCIDENTS[kind]
        sentences = [templates[p[0] % len(templates)].format(**values)]
        vendors = VENDOR_POOL.get(kind)
        if vendors:
            vendor = vendors[p[5] % len(vendors)]
            evidence = CARE_EVIDENCE if vendors is HOSPITALS else REPAIR_EVIDENCE
            sentences.append(evidence[p[7] % len(evidence)].format(vendor=vendor, amount=amount))
        else:
            sentences.append(f"Amount claimed: {amount}.")
        if kind in POLICE and coin[i, 0] < 0.6:
            sentences.append(f"Police report PR-{day.year}-{p[8] % 1_000_000:06d} was filed.")
        if coin[i, 1] < 0.5:
            prior = int(facts.prior_claims[i])
            plural = "claim" if prior == 1 else "claims"
            sentences.append("No prior claims on file." if prior == 0 else f"Policyholder has {prior} prior {plural}.")
        if facts.suspicious[i]:
            earlier = f"CL{p[9] % 10_000_000:08d}"
            sentences.append(DOUBTS[p[9] % len(DOUBTS)].format(earlier=earlier))
        no_deductible = status is ClaimStatus.APPROVED and facts.deductible[i] == 0
        outcome = OUTCOMES[status][0 if no_deductible else p[1] % len(OUTCOMES[status])]
        visit = (day + timedelta(days=int(7 + p[2] % 14))).isoformat()
        sentences.append(outcome.format(visit=visit, deductible=_money(float(facts.deductible[i]), facts.currency[i])))
        notes.append(" ".join(sentences[:2] + sentences[2:][-3:]))
    return notes
