"""Data classification (e.g. PII) that follows the data: declared once where a column is defined (its
contract field, a raw record), and carried by column lineage to every column derived from it, so a new
gold column computed from an e-mail address is PII without anyone declaring it.

The rule: a column whose classification is declared (``TableSpec.column_tags``, even as "none") keeps
what it declares; any other column takes the tags of every column its value is computed from (DIRECT
lineage edges: IDENTITY, TRANSFORMATION, AGGREGATION). INDIRECT edges (a filter, a join key, a CASE
condition) pass no tags: they decide which rows, not what a value holds. An aggregate of PII is tagged;
whether it is still identifying (k-anonymity) is a judgement this rule does not make. A whole-record
tag (``pii.raw``: a raw event document) passes only where the value is copied unchanged (IDENTITY): a
field parsed out of the record is classified by its contract, not as the whole record.
"""

from __future__ import annotations

from collections.abc import Mapping

from mdslab.lakehouse import TableRegistry
from mdslab.workloads.lineage.columns import TableLineage

DECLARED = "declared"
WHOLE_RECORD_TAGS = frozenset({"pii.raw"})
Tags = dict[str, str]  # tag -> where it came from: "declared", or the column it was inherited from


def classify(registry: TableRegistry, graph: Mapping[str, TableLineage]) -> dict[str, dict[str, Tags]]:
    """Table -> column -> its tags, for every registered table and column (see the module docstring)."""
    memo: dict[tuple[str, str], Tags] = {}

    def tags_of(table: str, column: str, visiting: frozenset[tuple[str, str]]) -> Tags:
        key = (table, column)
        if key in memo:
            return memo[key]
        declared = registry.get(table).column_tags if table in registry else {}
        if column in declared:
            found = dict.fromkeys(declared[column], DECLARED)
        else:
            found = {}
            for source in graph.get(table, {}).get(column, ()):
                ref = (source.table, source.column)
                if source.type != "DIRECT" or ref in visiting:
                    continue
                for tag in tags_of(source.table, source.column, visiting | {key}):
                    if tag not in WHOLE_RECORD_TAGS or source.subtype == "IDENTITY":
                        found.setdefault(tag, f"{source.table}.{source.column}")
        memo[key] = found
        return found

    return {spec.name: {c: tags_of(spec.name, c, frozenset()) for c in spec.schema.names} for spec in registry}


def has_tag(tags: Tags, wanted: str) -> bool:
    """``pii`` matches ``pii.email``; ``pii.email`` only itself."""
    return any(tag == wanted or tag.startswith(f"{wanted}.") for tag in tags)
