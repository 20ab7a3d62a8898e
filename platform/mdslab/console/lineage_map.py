"""The table-level lineage graph laid out for an SVG drawn on the server: left to right, one column per
step from the sources (a dataset sits one column right of its furthest input), and within a column in the
order of its inputs' positions (two barycentre sweeps, enough to untangle a lab-sized graph). No layout
library and no JavaScript are needed to see it; the console's own script only highlights a node's
up- and downstream on hover."""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass

ROW_HEIGHT = 34
NODE_HEIGHT = 24
COLUMN_GAP = 56
CHAR_WIDTH = 7.0  # the SVG's 12 px monospace font
PADDING = 12
LAYER_ORDER = {"api": 0, "kafka": 1, "postgres": 2, "bronze": 3, "silver": 4, "gold": 5, "mlflow": 6}


@dataclass(frozen=True)
class MapNode:
    name: str
    x: float
    y: float
    width: float
    kind: str  # bronze, silver, gold, or the name's prefix (api, kafka, postgres, mlflow...)
    focused: bool = False

    @property
    def height(self) -> int:
        return NODE_HEIGHT


@dataclass(frozen=True)
class MapEdge:
    source: str
    target: str
    path: str  # the SVG path's d attribute


@dataclass(frozen=True)
class LineageMap:
    width: float
    height: float
    nodes: tuple[MapNode, ...]
    edges: tuple[MapEdge, ...]


def kind_of(name: str) -> str:
    """``gold.daily_spend`` -> gold; ``kafka:transactions`` -> kafka; anything else -> other."""
    for separator in (".", ":", "/"):
        head = name.partition(separator)[0]
        if head in LAYER_ORDER:
            return head
    return "other"


def neighbourhood(inputs: Mapping[str, Set[str]], focus: str) -> dict[str, set[str]]:
    """The part of the graph ``focus`` is built from or feeds (transitively), with its edges."""
    outputs: dict[str, set[str]] = {}
    for target, sources in inputs.items():
        for source in sources:
            outputs.setdefault(source, set()).add(target)
    keep = {focus} | _reach(focus, inputs) | _reach(focus, outputs)
    return {target: set(sources) & keep for target, sources in inputs.items() if target in keep}


def _reach(start: str, step: Mapping[str, Set[str]]) -> set[str]:
    seen: set[str] = set()
    frontier = [start]
    while frontier:
        node = frontier.pop()
        for far in step.get(node, ()):
            if far not in seen:
                seen.add(far)
                frontier.append(far)
    return seen


def layout(inputs: Mapping[str, Set[str]], *, focus: str | None = None) -> LineageMap:
    """Positions for every dataset of ``inputs`` (dataset -> the datasets it is built from)."""
    names = set(inputs) | {source for sources in inputs.values() for source in sources}
    if not names:
        return LineageMap(0, 0, (), ())
    rank = _ranks(inputs, names)
    columns: list[list[str]] = [[] for _ in range(max(rank.values()) + 1)]
    for name in sorted(names, key=lambda n: (LAYER_ORDER.get(kind_of(n), 9), n)):
        columns[rank[name]].append(name)
    _untangle(columns, inputs)
    widths = [max(len(name) for name in column) * CHAR_WIDTH + 2 * PADDING for column in columns]
    tallest = max(len(column) for column in columns)
    nodes: dict[str, MapNode] = {}
    x = float(PADDING)
    for column, width in zip(columns, widths, strict=True):
        top = PADDING + (tallest - len(column)) * ROW_HEIGHT / 2
        for index, name in enumerate(column):
            nodes[name] = MapNode(name, x, top + index * ROW_HEIGHT, width, kind_of(name), name == focus)
        x += width + COLUMN_GAP
    edges = tuple(
        MapEdge(source, target, _curve(nodes[source], nodes[target]))
        for target in sorted(inputs)
        for source in sorted(inputs[target])
    )
    height = 2 * PADDING + tallest * ROW_HEIGHT - (ROW_HEIGHT - NODE_HEIGHT)
    return LineageMap(x - COLUMN_GAP + PADDING, height, tuple(nodes.values()), edges)


def _ranks(inputs: Mapping[str, Set[str]], names: set[str]) -> dict[str, int]:
    """Longest path from a source; an edge that closes a cycle is not followed."""
    rank: dict[str, int] = {}
    visiting: set[str] = set()

    def of(name: str) -> int:
        if name in rank:
            return rank[name]
        visiting.add(name)
        sources = [s for s in inputs.get(name, ()) if s not in visiting]
        rank[name] = 1 + max((of(source) for source in sources), default=-1)
        visiting.discard(name)
        return rank[name]

    for name in sorted(names):
        of(name)
    return rank


def _untangle(columns: list[list[str]], inputs: Mapping[str, Set[str]]) -> None:
    """Order each column by the mean position of its neighbours in the column before it (then after it)."""
    outputs: dict[str, set[str]] = {}
    for target, sources in inputs.items():
        for source in sources:
            outputs.setdefault(source, set()).add(target)
    for _sweep in range(2):
        for index in range(1, len(columns)):
            _sort_by(columns[index], columns[index - 1], inputs)
        for index in range(len(columns) - 2, -1, -1):
            _sort_by(columns[index], columns[index + 1], outputs)


def _sort_by(column: list[str], neighbours: list[str], links: Mapping[str, Set[str]]) -> None:
    """Sort ``column`` by the mean position of each name's ``links`` in ``neighbours`` (stable: a name
    without links keeps its place)."""
    position = {name: i for i, name in enumerate(neighbours)}
    current = {name: i for i, name in enumerate(column)}

    def centre(name: str) -> float:
        linked = [position[n] for n in links.get(name, ()) if n in position]
        return sum(linked) / len(linked) if linked else float(current[name])

    column.sort(key=centre)


def _curve(source: MapNode, target: MapNode) -> str:
    x1, y1 = source.x + source.width, source.y + NODE_HEIGHT / 2
    x2, y2 = target.x, target.y + NODE_HEIGHT / 2
    bend = max(24.0, (x2 - x1) / 2)
    return f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
