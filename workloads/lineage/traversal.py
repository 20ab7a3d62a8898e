"""Walking a lineage graph from one table or column, upstream (where it comes from) or downstream (what
depends on it: impact analysis), to a depth; the answer is the edges met, each with its step count."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from mdslab.errors import MdslabError, did_you_mean
from mdslab.workloads.lineage.recorded import RecordedLineage


class Direction(StrEnum):
    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"


class UnknownNodeError(MdslabError, LookupError):
    """A table or column the lineage graph does not have (the message suggests what it does have)."""


@dataclass(frozen=True, order=True)
class Node:
    """A dataset, or one of its columns."""

    table: str
    column: str | None = None

    def __str__(self) -> str:
        return self.table if self.column is None else f"{self.table}.{self.column}"


@dataclass(frozen=True, order=True)
class Edge:
    """``source`` is (partly) derived into ``target``; ``depth``: steps from where the walk began."""

    depth: int
    source: Node
    target: Node
    type: str = ""  # DIRECT / INDIRECT for column edges (OpenLineage's transformation type)
    subtype: str = ""


@dataclass(frozen=True)
class LineageAnswer:
    root: Node
    direction: Direction
    depth: int | None
    edges: tuple[Edge, ...]

    def depths(self) -> dict[Node, int]:
        """Every node met, with the steps from the root it was first met at (the root: 0)."""
        seen = {self.root: 0}
        for edge in self.edges:
            seen.setdefault(edge.source if self.direction is Direction.UPSTREAM else edge.target, edge.depth)
        return seen

    @property
    def nodes(self) -> list[Node]:
        seen = self.depths()
        return sorted(seen, key=lambda node: (seen[node], node))


_Step = Callable[[RecordedLineage, Node, int], list[Edge]]


def resolve(graph: RecordedLineage, text: str) -> Node:
    """``TABLE`` or ``TABLE.COLUMN`` (table names hold dots: the longest known table prefix wins)."""
    text = text.strip()
    datasets = graph.datasets
    if text in datasets:
        return Node(text)
    table = max((d for d in datasets if text.startswith(f"{d}.")), key=len, default=None)
    if table is None:
        if not datasets:
            raise UnknownNodeError(
                "the lineage store holds no runs yet: run the pipeline (`mdslab pipeline run` or `make demo`) "
                "or send OpenLineage events to POST /api/v1/lineage"
            )
        hint = did_you_mean(text, sorted(datasets), "`mdslab catalog` lists the tables", cutoff=0.5)
        raise UnknownNodeError(f"no table {text!r} in the lineage store; {hint}")
    column = text[len(table) + 1 :]
    columns = graph.column_names(table)
    if column not in columns:
        hint = did_you_mean(column, columns, f"its columns: {', '.join(columns) or '(none known)'}", cutoff=0.5)
        raise UnknownNodeError(f"{table} has no column {column!r}; {hint}")
    return Node(table, column)


def trace(
    graph: RecordedLineage, root: Node, direction: Direction, depth: int | None = None, *, indirect: bool = True
) -> LineageAnswer:
    """Every edge within ``depth`` steps of ``root`` (all of them when ``depth`` is None), breadth first;
    without ``indirect``, only the edges a value flows along (not the columns that filter, join, group or
    order the rows: the path a person follows to find where a value comes from)."""
    if depth is not None and depth < 1:
        raise ValueError(f"depth must be at least 1, not {depth}")
    step: _Step = _upstream_of if direction is Direction.UPSTREAM else _downstream_of(graph)
    edges: list[Edge] = []
    seen = {root}
    frontier = [root]
    level = 0
    while frontier and (depth is None or level < depth):
        level += 1
        following = []
        for node in frontier:
            for edge in step(graph, node, level):
                if not indirect and edge.type == "INDIRECT":
                    continue
                edges.append(edge)
                far = edge.source if direction is Direction.UPSTREAM else edge.target
                if far not in seen:
                    seen.add(far)
                    following.append(far)
        frontier = following
    return LineageAnswer(root, direction, depth, tuple(edges))


def _upstream_of(graph: RecordedLineage, node: Node, level: int) -> list[Edge]:
    if node.column is None:
        return [Edge(level, Node(source), node) for source in sorted(graph.inputs.get(node.table, ()))]
    return [
        Edge(level, Node(s.table, s.column), node, s.type, s.subtype)
        for s in graph.columns.get(node.table, {}).get(node.column, ())
    ]


def _downstream_of(graph: RecordedLineage) -> _Step:
    """The inverted graph, built once per walk."""
    tables: dict[str, set[str]] = {}
    for out, sources in graph.inputs.items():
        for source in sources:
            tables.setdefault(source, set()).add(out)
    columns: dict[Node, list[tuple[Node, str, str]]] = {}
    for out, lineage in graph.columns.items():
        for column, column_sources in lineage.items():
            for s in column_sources:
                columns.setdefault(Node(s.table, s.column), []).append((Node(out, column), s.type, s.subtype))

    def step(_graph: RecordedLineage, node: Node, level: int) -> list[Edge]:
        if node.column is None:
            return [Edge(level, node, Node(out)) for out in sorted(tables.get(node.table, ()))]
        return [Edge(level, node, target, kind, sub) for target, kind, sub in sorted(columns.get(node, []))]

    return step
