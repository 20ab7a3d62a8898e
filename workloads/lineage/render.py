"""A lineage answer as data (JSON) or as a picture's source: Mermaid (renders in GitHub, GitLab and most
Markdown viewers) and Graphviz DOT (``dot -Tsvg``). Columns are drawn inside a box per table; an
INDIRECT edge (a filter, a join key, a CASE condition) is dashed."""

from __future__ import annotations

from typing import Any

from mdslab.workloads.lineage.traversal import Edge, LineageAnswer, Node


def as_dict(answer: LineageAnswer) -> dict[str, Any]:
    nodes = answer.nodes
    depth_of = answer.depths()
    return {
        "root": str(answer.root),
        "direction": str(answer.direction),
        "depth": answer.depth,
        "nodes": [{"name": str(n), "table": n.table, "column": n.column, "depth": depth_of[n]} for n in nodes],
        "edges": [
            {"from": str(e.source), "to": str(e.target), "type": e.type or None, "subtype": e.subtype or None}
            for e in answer.edges
        ],
    }


def _tables(answer: LineageAnswer) -> dict[str, list[Node]]:
    grouped: dict[str, list[Node]] = {}
    for node in answer.nodes:
        grouped.setdefault(node.table, []).append(node)
    return dict(sorted(grouped.items()))


def _label(edge: Edge) -> str:
    return edge.subtype or edge.type


def as_mermaid(answer: LineageAnswer) -> str:
    ids = {node: f"n{i}" for i, node in enumerate(answer.nodes)}
    lines = ["flowchart LR"]
    for t, (table, nodes) in enumerate(_tables(answer).items()):
        columns = [n for n in nodes if n.column is not None]
        if not columns:
            lines.append(f'  {ids[nodes[0]]}["{_quote(table)}"]')
            continue
        lines.append(f'  subgraph t{t}["{_quote(table)}"]')
        lines += [f'    {ids[n]}["{_quote(n.column or "")}"]' for n in columns]
        lines.append("  end")
    for edge in answer.edges:
        arrow = "-.->" if edge.type == "INDIRECT" else "-->"
        label = f"|{_quote(_label(edge))}|" if _label(edge) else ""
        lines.append(f"  {ids[edge.source]} {arrow}{label} {ids[edge.target]}")
    lines.append(f"  style {ids[answer.root]} stroke-width:3px")
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return text.replace('"', "#quot;")


def as_dot(answer: LineageAnswer) -> str:
    ids = {node: f"n{i}" for i, node in enumerate(answer.nodes)}
    lines = [
        "digraph lineage {",
        '  rankdir=LR; fontname="Helvetica"; fontsize=12;',
        '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9, color="#555555"];',
    ]
    for t, (table, nodes) in enumerate(_tables(answer).items()):
        columns = [n for n in nodes if n.column is not None]
        if not columns:
            lines.append(f"  {ids[nodes[0]]} [label={_dot(table)}{_root(answer, nodes[0])}];")
            continue
        lines += [
            f"  subgraph cluster_{t} {{",
            f'    label={_dot(table)}; style="rounded,filled"; fillcolor="{_layer_colour(table)}";',
        ]
        lines += [f"    {ids[n]} [label={_dot(n.column or '')}{_root(answer, n)}];" for n in columns]
        lines.append("  }")
    for edge in answer.edges:
        style = ', style=dashed, color="#aaaaaa", fontcolor="#888888"' if edge.type == "INDIRECT" else ""
        lines.append(f"  {ids[edge.source]} -> {ids[edge.target]} [label={_dot(_label(edge))}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _root(answer: LineageAnswer, node: Node) -> str:
    return ', penwidth=3, fillcolor="#fff3c4"' if node == answer.root else ""


def _layer_colour(table: str) -> str:
    return {"bronze": "#f3e1cf", "silver": "#e6e9ee", "gold": "#f7ecc4"}.get(table.partition(".")[0], "#e3f0e3")


def _dot(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
