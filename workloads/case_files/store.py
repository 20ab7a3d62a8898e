"""The claims system's side: it writes each new claim's case file, revises some earlier ones (schema
version 2 adds fields) and deletes a few (erasure requests), in MongoDB through pymongo.

A simulated run does this once: writing the same run again inserts nothing (ids already present) and
revises nothing twice (``last_revised_run``), so a repeated file drop does not fake changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

from mdslab import documentstore
from mdslab.settings import MongoSettings
from mdslab.workloads.case_files.documents import case_file, chosen, claims_of, revision

COLLECTION = "case_files"
REVISED_SHARE = 0.05  # of the earlier case files, per later run
DELETED_SHARE = 0.01


@dataclass(frozen=True)
class CaseFileChanges:
    inserted: int
    revised: int
    deleted: int


def now_ms() -> datetime:
    """Now, at MongoDB's precision (milliseconds), so what the lake records equals what the store holds."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def write_case_files(
    mongo: MongoSettings, raw_claims: pa.Table, *, run: int, at: datetime | None = None
) -> CaseFileChanges:
    """Store the case files of a run's claims; from the second run on, revise and delete earlier ones."""
    when = at or now_ms()
    with documentstore.connect(mongo) as client:
        files = client[mongo.database][COLLECTION]
        files.create_index([("updated_at", 1), ("_id", 1)])  # the claims system's own: what extraction reads by
        claims = {claim["claim_id"]: claim for claim in claims_of(raw_claims)}  # planted copies: once
        present = {doc["_id"] for doc in files.find({"_id": {"$in": list(claims)}}, {"_id": 1})}
        new = [case_file(claim, when) for claim_id, claim in claims.items() if claim_id not in present]
        if new:
            files.insert_many(new, ordered=False)
        revised = deleted = 0
        if run > 0:
            # the earlier runs' files: the same set however often this run is written
            earlier = [str(doc["_id"]) for doc in files.find({}, {"_id": 1}) if doc["_id"] not in claims]
            for claim_id in chosen(earlier, run=run, share=REVISED_SHARE, purpose="revise"):
                change = {"$set": revision({"_id": claim_id}, run=run, at=when)}
                revised += files.update_one({"_id": claim_id, "last_revised_run": {"$ne": run}}, change).modified_count
            gone = chosen(earlier, run=run, share=DELETED_SHARE, purpose="delete")
            if gone:
                deleted = files.delete_many({"_id": {"$in": gone}}).deleted_count
    return CaseFileChanges(len(new), revised, deleted)
