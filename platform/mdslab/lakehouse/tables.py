"""Read, write and merge the registered Delta tables on S3 (delta-rs), with time travel.

Every write goes through :func:`conform` (schema enforcement) and can carry metadata into the same
commit: pipeline steps stamp their input versions there, and the stream consumer its Kafka offsets
(as a delta-rs app transaction), so the table itself says what it was built from.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import DeltaError, TableNotFoundError

from mdslab import objectstore
from mdslab.errors import MdslabError, ServiceUnavailableError
from mdslab.lakehouse import publications
from mdslab.lakehouse.conform import Data, SchemaMismatchError, conform
from mdslab.lakehouse.publications import Publication
from mdslab.lakehouse.registry import TABLE_CONFIGURATION, Layer, TableRegistry, TableSpec
from mdslab.settings import LakeSettings, Settings

METADATA_KEY = "mdslab"

__all__ = [
    "Lakehouse",
    "MaintenanceResult",
    "MergeResult",
    "NotAppendOnlyError",
    "NotPublishedError",
    "SchemaMismatchError",
    "StaleLayoutError",
    "TableInfo",
    "TableMissingError",
]


class TableMissingError(MdslabError):
    """The table has never been written (run the step that produces it)."""


class NotAppendOnlyError(MdslabError):
    """Rows were deleted or rewritten between two versions: the changes are not new rows only."""


class StaleLayoutError(SchemaMismatchError):
    """The stored table has an older design (columns, partitioning) than the lab registers now: only a
    full overwrite can change that, so appends and merges are refused unwritten."""


class NotPublishedError(TableMissingError):
    """The table was built, but no build of it has passed the quality gate yet."""


@dataclass(frozen=True)
class TableInfo:
    name: str
    layer: Layer
    uri: str
    description: str
    version: int | None
    rows: int
    files: int
    size_bytes: int
    last_operation: str
    last_commit: datetime | None
    published: int | None = None  # the version readers see (audited tables: the gate's; others: latest)


@dataclass(frozen=True)
class MaintenanceResult:
    name: str
    version: int | None
    files_before: int
    files_after: int
    files_vacuumed: int


@dataclass(frozen=True)
class MergeResult:
    version: int
    inserted: int
    updated: int


class Lakehouse:
    """The registered tables at their S3 locations. Built once and handed to whoever needs tables."""

    def __init__(self, registry: TableRegistry, lake: LakeSettings, storage_options: dict[str, str]) -> None:
        self.registry = registry
        self.lake = lake
        self.storage_options = storage_options
        self._kept: dict[tuple[str, int | None], DeltaTable] = {}  # see reusing_snapshots
        self._keeping_thread: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings, registry: TableRegistry) -> Lakehouse:
        return cls(registry, settings.lake, objectstore.delta_storage_options(settings.s3))

    def spec(self, name: str) -> TableSpec:
        return self.registry.get(name)

    def uri(self, name: str) -> str:
        return self.spec(name).uri(self.lake)

    @contextmanager
    def reusing_snapshots(self) -> Iterator[None]:
        """Within the block, tables this thread opens stay open: the latest state of a table catches up
        from its open copy, and a version once opened is kept (a snapshot never changes).

        Why: opening a table replays its log from the last checkpoint, 25-65 ms per open on S3 here,
        and one pipeline run opens its tables ~120 times (3.5 s of a 15 s increment on a 5M-row lake,
        measured); an open table catches up with one listing of its log (2-3 ms). For one writer's run
        only: a table deleted and created again inside the block would not be noticed."""
        if self._keeping_thread is not None:
            yield
            return
        self._keeping_thread = threading.get_ident()
        try:
            yield
        finally:
            self._keeping_thread = None
            self._kept.clear()

    def _keeping(self) -> bool:
        return self._keeping_thread == threading.get_ident()

    def delta(self, name: str, *, version: int | None = None) -> DeltaTable:
        kept = self._kept.get((name, version)) if self._keeping() else None
        try:
            if kept is not None:
                if version is None:
                    kept.update_incremental()
                return kept
            table = DeltaTable(self.uri(name), version=version, storage_options=self.storage_options)
        except TableNotFoundError:
            raise TableMissingError(
                f"table {name} does not exist yet at {self.uri(name)}: run the step that builds it"
            ) from None
        except OSError as exc:
            raise self._storage_error(name, exc) from None
        if self._keeping():
            self._kept[(name, version)] = table
        return table

    def exists(self, name: str) -> bool:
        if self._keeping() and (name, None) in self._kept:
            return True
        try:
            return bool(DeltaTable.is_deltatable(self.uri(name), storage_options=self.storage_options))
        except OSError as exc:
            raise self._storage_error(name, exc) from None

    def _storage_error(self, name: str, exc: OSError) -> MdslabError:
        """delta-rs reports S3 trouble as a nested 'Generic S3 error'; say which and what to do."""
        text = str(exc)
        bucket = self.spec(name).bucket(self.lake)
        endpoint = self.storage_options.get("AWS_ENDPOINT_URL", "S3")
        if "NoSuchBucket" in text:
            return ServiceUnavailableError(
                f"bucket {bucket} does not exist at {endpoint}: `mdslab up` creates the lake buckets "
                "(or check MDSLAB_LAKE__RAW_BUCKET / MDSLAB_LAKE__CURATED_BUCKET)"
            )
        if any(word in text for word in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied")):
            return ServiceUnavailableError(f"S3 at {endpoint} rejected the credentials (MDSLAB_S3__*_KEY)")
        if any(word in text for word in ("Connection refused", "error sending request", "dns error")):
            return ServiceUnavailableError(f"S3 at {endpoint} is not reachable: `mdslab status` / `mdslab up`")
        return ServiceUnavailableError(f"S3 error on table {name} at {self.uri(name)}: {text.splitlines()[0]}")

    def version(self, name: str) -> int | None:
        """Current version, or None for a table never written."""
        return self.delta(name).version() if self.exists(name) else None

    @property
    def publications_uri(self) -> str:
        return publications.uri(self.lake.curated_bucket)

    def publications(self) -> dict[str, Publication]:
        """The current publication of every audited table that has one."""
        try:
            return publications.latest(self.publications_uri, self.storage_options)
        except OSError as exc:
            first_line = str(exc).splitlines()[0]
            raise ServiceUnavailableError(f"S3 error reading {self.publications_uri}: {first_line}") from None

    def current_version(self, name: str) -> int | None:
        """The version readers see: the published one for audited tables (None before the first
        publication), the latest for the others (None for a table never written)."""
        if not self.spec(name).audited:
            return self.version(name)
        found = self.publications().get(name)
        return found.version if found else None

    def read_current(self, name: str, *, columns: list[str] | None = None, filters: Any = None) -> pa.Table:
        """What readers see of a table (:meth:`current_version`), as Arrow."""
        version = self.current_version(name)
        if version is None:
            if self.spec(name).audited and self.exists(name):
                raise NotPublishedError(
                    f"table {name} has been built but no build of it has passed the quality gate yet: "
                    "`mdslab pipeline check` says why"
                )
            raise TableMissingError(f"table {name} does not exist yet at {self.uri(name)}: run the step that builds it")
        return self.read_table(name, version=version, columns=columns, filters=filters)

    def publish(self, versions: Mapping[str, int], *, run_id: str, note: str) -> None:
        """Make ``versions`` of audited tables the ones readers see, together (one commit)."""
        unaudited = [name for name in versions if not self.spec(name).audited]
        if unaudited:
            raise ValueError(f"only audited tables are published; not {', '.join(unaudited)}")
        publications.publish(self.publications_uri, self.storage_options, versions, run_id=run_id, note=note)

    def row_count(self, name: str, *, version: int | None = None) -> int:
        """Rows of a snapshot, from the log's file statistics (no data is read)."""
        return int(self.delta(name, version=version).count())

    def read_table(
        self,
        name: str,
        *,
        version: int | None = None,
        columns: list[str] | None = None,
        filters: Any = None,
    ) -> pa.Table:
        """A snapshot as Arrow; ``version`` travels back in time."""
        return self.delta(name, version=version).to_pyarrow_table(columns=columns, filters=filters)

    def appended_rows(self, name: str, *, after: int, to: int, columns: list[str] | None = None) -> pa.Table:
        """The rows committed in versions ``after`` + 1 .. ``to`` (Delta's change feed, read from the add
        actions; OPTIMIZE commits move no data and add nothing). Raises :class:`NotAppendOnlyError` when
        any of those commits deleted or rewrote rows, where an incremental reader must start over."""
        schema = self.spec(name).schema
        wanted = pa.schema([schema.field(column) for column in (columns or schema.names)])
        if to <= after:
            return wanted.empty_table()
        try:
            changes = pa.table(self.delta(name).load_cdf(starting_version=after + 1, ending_version=to).read_all())
        except Exception:  # delta-rs cannot read a change feed across some overwrites (a change of design)
            overwrites = self._overwrites(name, after=after, to=to)
            if not overwrites:
                raise
            raise NotAppendOnlyError(
                f"{name} v{after + 1}..v{to} holds an overwrite (v{overwrites[0]}), not only new rows"
            ) from None
        kinds = set(changes.column("_change_type").to_pylist())
        if kinds - {"insert"}:
            raise NotAppendOnlyError(
                f"{name} v{after + 1}..v{to} holds {', '.join(sorted(kinds))} changes, not only new rows"
            )
        return changes.select(wanted.names).cast(wanted)

    def rows_in_files_added_after(self, name: str, *, version: int, columns: list[str]) -> pa.Table | None:
        """The latest snapshot's rows that sit in data files the snapshot at ``version`` did not have: every
        row a commit since wrote (appended, or rewritten by a MERGE or an overwrite), plus the rows that
        share a rewritten file. The other rows are exactly rows ``version`` held (Delta never changes a
        file), which lets a check proven on ``version`` look at the new files only. None when ``version``
        can no longer be opened (its log expired, or the table was recreated with fewer versions)."""
        try:
            earlier = self.delta(name, version=version).get_add_actions(flatten=True)
        except DeltaError:
            return None
        kept = set(pa.table(earlier).column("path").to_pylist())
        latest = self.delta(name).to_pyarrow_dataset()
        added = [fragment for fragment in latest.get_fragments() if fragment.path not in kept]
        return ds.FileSystemDataset(added, latest.schema, latest.format, latest.filesystem).to_table(columns=columns)

    def _overwrites(self, name: str, *, after: int, to: int) -> list[int]:
        """The versions in ``after`` + 1 .. ``to`` written in overwrite mode (read from the log's history,
        one commit file per version since ``after``: for the rare path only)."""
        table = self.delta(name)
        return sorted(
            int(entry["version"])
            for entry in table.history(table.version() - after)
            if after < int(entry.get("version", -1)) <= to
            and (entry.get("operationParameters") or {}).get("mode") == "Overwrite"
        )

    def ensure_table(self, name: str) -> DeltaTable:
        """Create the table empty, with its registered schema, partitioning and description."""
        if self.exists(name):
            return self.delta(name)
        spec = self.spec(name)
        table = DeltaTable.create(
            self.uri(name),
            spec.schema,
            mode="ignore",
            partition_by=list(spec.partition_by) or None,
            name=spec.name,
            description=spec.description,
            configuration=TABLE_CONFIGURATION,
            storage_options=self.storage_options,
        )
        if self._keeping():
            self._kept[(name, None)] = table
        return table

    def layout_changes(self, name: str) -> list[str]:
        """How the stored table's design differs from the registered one (columns, partitioning), e.g.
        after an upgrade of the lab changed a table; empty when they match or the table does not exist.

        Why: a table keeps the design it was created with, and only a full overwrite may change it
        (Delta's schema overwrite): an increment appended to the old design would fail in delta-rs with
        a message about partitions, or mix layouts."""
        return _layout_changes(self.spec(name), self.delta(name)) if self.exists(name) else []

    def write_table(
        self,
        name: str,
        data: Data,
        *,
        mode: Literal["append", "overwrite"] = "append",
        metadata: Mapping[str, Any] | None = None,
        app_transactions: Mapping[str, int] | None = None,
    ) -> int:
        """Append or overwrite; returns the new version. A batch off the schema is refused unwritten.

        ``app_transactions`` (app id -> version) are recorded in the same commit as the data, which is
        how a writer makes itself exactly-once (a landed batch, a consumer's next offset per partition).
        An empty ``data`` still commits them.
        """
        spec = self.spec(name)
        table = self.ensure_table(name)
        conformed = conform(name, spec.schema, data, version=table.version())
        redesigned = _layout_changes(spec, table)
        if redesigned and mode != "overwrite":
            raise _stale_layout(name, redesigned)
        write_deltalake(
            table,
            conformed,
            mode=mode,
            partition_by=list(spec.partition_by) or None,
            schema_mode="overwrite" if redesigned else None,  # the new design replaces the old; history stays
            commit_properties=_commit_properties(metadata, app_transactions),
        )
        table.update_incremental()
        return table.version()

    def merge_table(
        self,
        name: str,
        data: pa.Table,
        *,
        keys: tuple[str, ...] | None = None,
        update_existing: bool = True,
        metadata: Mapping[str, Any] | None = None,
    ) -> MergeResult:
        """Upsert on the table's key (or insert only new keys when ``update_existing`` is False)."""
        spec = self.spec(name)
        keys = keys or spec.key
        if not keys:
            raise ValueError(f"table {name} has no key to merge on")
        table = self.ensure_table(name)
        conformed = conform(name, spec.schema, data, version=table.version())
        redesigned = _layout_changes(spec, table)
        if redesigned:
            raise _stale_layout(name, redesigned)
        predicate = " AND ".join(f"t.{key} = s.{key}" for key in keys)
        merger = table.merge(
            conformed,
            predicate,
            source_alias="s",
            target_alias="t",
            commit_properties=_commit_properties(metadata, None),
        )
        if update_existing:
            merger = merger.when_matched_update_all()
        metrics = merger.when_not_matched_insert_all().execute()
        table.update_incremental()
        return MergeResult(
            table.version(), int(metrics["num_target_rows_inserted"]), int(metrics["num_target_rows_updated"])
        )

    def commit_metadata(self, name: str, *, version: int | None = None) -> dict[str, Any]:
        """What the commit at ``version`` (default: latest) recorded under our key; {} if nothing."""
        table = self.delta(name)
        target = table.version() if version is None else version
        for entry in table.history(table.version() - target + 1):
            if entry.get("version") == target:
                raw = entry.get(METADATA_KEY)
                return json.loads(raw) if isinstance(raw, str) else dict(raw or {})
        return {}

    def transaction_version(self, name: str, app_id: str) -> int | None:
        """Last version an app (e.g. a consumer of a partition) committed, for exactly-once resumes."""
        return self.delta(name).transaction_version(app_id) if self.exists(name) else None

    def transaction_versions(self, name: str, app_ids: Iterable[str]) -> dict[str, int]:
        """:meth:`transaction_version` of several apps from one snapshot (apps never seen are left out)."""
        if not self.exists(name):
            return {}
        table = self.delta(name)
        found = {app_id: table.transaction_version(app_id) for app_id in app_ids}
        return {app_id: version for app_id, version in found.items() if version is not None}

    def optimize(self, name: str, *, retain_hours: int = 168) -> MaintenanceResult:
        """Compact small files, then delete files unreferenced for ``retain_hours`` (time travel to
        versions older than that stops working; Delta's default is 7 days)."""
        if not self.exists(name):
            return MaintenanceResult(name, None, 0, 0, 0)
        table = self.delta(name)
        before = len(table.file_uris())
        table.optimize.compact()
        table.update_incremental()
        retain_hours = max(retain_hours, self._published_age_hours(name, table))
        vacuumed = table.vacuum(retention_hours=retain_hours, dry_run=False, enforce_retention_duration=False)
        table.update_incremental()
        return MaintenanceResult(name, table.version(), before, len(table.file_uris()), len(vacuumed))

    def _published_age_hours(self, name: str, table: DeltaTable) -> int:
        """Hours since the published version of an audited table was committed (0 if none): a vacuum
        must keep its files, which a newer unpublished build no longer references."""
        version = self.current_version(name) if self.spec(name).audited else None
        if version is None or version == table.version():
            return 0
        for entry in table.history():
            if entry.get("version") == version and "timestamp" in entry:
                age_s = datetime.now(UTC).timestamp() - entry["timestamp"] / 1000
                return int(age_s // 3600) + 1
        return 0

    def info(self, name: str) -> TableInfo:
        spec = self.spec(name)
        if not self.exists(name):
            return TableInfo(name, spec.layer, self.uri(name), spec.description, None, 0, 0, 0, "", None, None)
        table = self.delta(name)
        actions = table.get_add_actions(flatten=True)
        actions_table = pa.table(actions)
        rows = int(pc.sum(actions_table.column("num_records")).as_py() or 0) if len(actions_table) else 0
        size = int(pc.sum(actions_table.column("size_bytes")).as_py() or 0) if len(actions_table) else 0
        last = table.history(1)[0]
        stamp = datetime.fromtimestamp(last["timestamp"] / 1000, tz=UTC) if "timestamp" in last else None
        return TableInfo(
            name,
            spec.layer,
            self.uri(name),
            spec.description,
            table.version(),
            rows,
            len(actions_table),
            size,
            str(last.get("operation", "")),
            stamp,
            self.current_version(name),
        )


def _commit_properties(
    metadata: Mapping[str, Any] | None, app_transactions: Mapping[str, int] | None
) -> CommitProperties | None:
    if metadata is None and not app_transactions:
        return None
    return CommitProperties(
        custom_metadata={METADATA_KEY: json.dumps(dict(metadata or {}), sort_keys=True, default=str)},
        app_transactions=[Transaction(app_id=app_id, version=version) for app_id, version in app_transactions.items()]
        if app_transactions
        else None,
    )


def _layout_changes(spec: TableSpec, table: DeltaTable) -> list[str]:
    changes = []
    stored_partitions = list(table.metadata().partition_columns)
    if stored_partitions != list(spec.partition_by):
        changes.append(f"partitioned by {_listed(stored_partitions)}, registered {_listed(spec.partition_by)}")
    stored_columns = set(table.schema().to_arrow().names)
    changes += [f"column {column} is new" for column in sorted(set(spec.schema.names) - stored_columns)]
    changes += [f"column {column} is gone" for column in sorted(stored_columns - set(spec.schema.names))]
    return changes


def _stale_layout(name: str, changes: list[str]) -> StaleLayoutError:
    return StaleLayoutError(
        f"{name} was created with an older design ({'; '.join(changes)}): only a full build can change it "
        "(`mdslab pipeline run --full-refresh`); nothing was written"
    )


def _listed(columns: Iterable[str]) -> str:
    return ", ".join(columns) or "nothing"
