"""Commands over the catalog and the lineage store: catalog [search|show], lineage [show|runs|flush]."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree
from typer.core import TyperGroup

from mdslab.cli.context import console, one_line_errors, print_table, settings
from mdslab.cli.lake import size_text
from mdslab.errors import MdslabError

if TYPE_CHECKING:
    from mdslab.workloads.lineage.traversal import LineageAnswer


class _DefaultCommandGroup(TyperGroup):
    """A group whose first argument, when it is not one of its commands, goes to a default command:
    ``mdslab lineage gold.daily_spend`` is ``mdslab lineage show gold.daily_spend``."""

    default_command = ""
    default_when_empty = False

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: typer's click Context
        first = args[0] if args else None
        if first is None:
            args = [self.default_command] if self.default_when_empty else args
        elif first not in self.commands and first not in ("--help", "-h"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


class _CatalogGroup(_DefaultCommandGroup):
    default_command = "search"
    default_when_empty = True


class _LineageGroup(_DefaultCommandGroup):
    default_command = "show"


catalog_app = typer.Typer(
    cls=_CatalogGroup,
    help="The data catalog: tables and columns with their meaning, owner, contract and classification "
    "(`mdslab catalog` lists the tables; `catalog search TEXT`, `catalog --tag pii`, `catalog show TABLE`).",
    no_args_is_help=False,
)
lineage_app = typer.Typer(
    cls=_LineageGroup,
    help="Where a table or column comes from and what depends on it, from the lineage store "
    "(`mdslab lineage gold.fraud_features.amount_to_avg_30d --upstream`), and the runs that built it "
    "(`mdslab lineage runs`).",
    no_args_is_help=True,
)


# --- catalog ---------------------------------------------------------------------------------------


def _tags(tags: dict[str, str]) -> str:
    from mdslab.workloads.lineage.classification import DECLARED

    return ", ".join(tag if origin == DECLARED else f"{tag} (from {origin})" for tag, origin in tags.items())


@catalog_app.command("search")
@one_line_errors
def catalog_search(
    text: Annotated[str, typer.Argument(help="Words to find in table/column names, descriptions, owners, tags.")] = "",
    tag: Annotated[
        str | None, typer.Option("--tag", help="Only columns with this classification (pii matches pii.email).")
    ] = None,
    layer: Annotated[
        str | None, typer.Option("--layer", help="Only tables of this layer: bronze, silver, gold.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Find tables and columns (with neither TEXT nor --tag: every table)."""
    from mdslab.lakehouse import Layer
    from mdslab.workloads.lake import build_registry
    from mdslab.workloads.lineage.catalog import catalog, search

    if layer is not None and layer not in {str(member) for member in Layer}:
        raise MdslabError(f"--layer {layer!r} is not a layer: use bronze, silver or gold")
    loaded = settings()
    matches = search(catalog(build_registry(), loaded.state_dir / "cache"), text, tag=tag, layer=layer)
    if as_json:
        console.print_json(json.dumps([match.as_dict() for match in matches]))
        return
    if not matches:
        what = " and ".join(part for part in (repr(text) if text else "", f"tag {tag}" if tag else "") if part)
        console.print(f"nothing in the catalog matches {what}" + (f" in layer {layer}" if layer else ""))
        return
    if all(match.column is None for match in matches):
        out = Table("table", "owner", "columns", "tags", "description", title_justify="left")
        for match in matches:
            table = match.table
            out.add_row(table.name, table.owner, str(len(table.columns)), ", ".join(table.tags), table.description)
        print_table(out, drop_first=("columns", "tags"))
        return
    out = Table("table", "column", "matched", "tags", "description", title_justify="left")
    for match in matches:
        column = match.column
        out.add_row(
            match.table.name,
            "" if column is None else column.name,
            match.matched,
            _tags(column.tags) if column is not None else ", ".join(match.table.tags),
            match.table.description if column is None else column.description,
        )
    print_table(out, drop_first=("matched",))


@catalog_app.command("show")
@one_line_errors
def catalog_show(
    table: Annotated[str, typer.Argument(help="A table, e.g. gold.fraud_features.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """One table: schema with column docs and classification, owner, contract, Delta version, rows, size,
    freshness, the run that last wrote it, its last quality checks, the tables up- and downstream."""
    from mdslab.workloads.lake import lakehouse
    from mdslab.workloads.lineage.catalog import catalog, find_table, table_state
    from mdslab.workloads.lineage.recorded import lab_names, load_lineage

    loaded = settings()
    lake = lakehouse(loaded)
    entry = find_table(catalog(lake.registry, loaded.state_dir / "cache"), table)
    names = lab_names(lake.registry, loaded)
    state = table_state(lake, load_lineage(loaded.postgres, names), entry.name)
    if as_json:
        console.print_json(json.dumps({**entry.as_dict(), **state.as_dict()}))
        return
    lines = [
        f"[bold]{entry.name}[/]  {escape(entry.description)}",
        f"owner: team:{entry.owner}   layer: {entry.layer}   contract: {entry.contract or '-'}"
        + (f"   key: {', '.join(entry.key)}" if entry.key else ""),
    ]
    if state.version is None:
        lines.append("not built yet")
    else:
        published = "" if not entry.audited else f" (readers see v{state.published})"
        age = "" if state.age_s is None else f", {_age(state.age_s)} ago"
        lines.append(
            f"version {state.version}{published}: {state.rows:,} rows, {size_text(state.size_bytes)} in "
            f"{state.files} files, last commit {state.last_commit:%Y-%m-%d %H:%M:%S} UTC{age}"
        )
    writer = state.writer
    lines.append(
        "last written by: "
        + (
            "(no run recorded)"
            if writer is None
            else f"{writer.job} run {writer.run_id} at {writer.at:%Y-%m-%d %H:%M:%S}"
        )
    )
    lines.append(f"upstream: {', '.join(state.upstream) or '-'}")
    lines.append(f"downstream: {', '.join(state.downstream) or '-'}")
    for line in lines:
        console.print(line, highlight=False)
    if state.quality:
        checks = Table("check", "result", "detail", title="last quality checks", title_justify="left")
        for a in state.quality:
            checks.add_row(a.check, "[green]pass[/]" if a.success else "[red]FAIL[/]", a.detail)
        print_table(checks)
    columns = Table("column", "type", "tags", "description", title="columns", title_justify="left")
    for column in entry.columns:
        columns.add_row(
            column.name, column.type + ("" if column.nullable else " not null"), _tags(column.tags), column.description
        )
    print_table(columns, drop_first=("type",))


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


# --- lineage ---------------------------------------------------------------------------------------


@lineage_app.command("show")
@one_line_errors
def lineage_show(
    node: Annotated[str, typer.Argument(metavar="TABLE[.COLUMN]", help="e.g. gold.fraud_features.amount_to_avg_30d")],
    upstream: Annotated[bool, typer.Option("--upstream", help="Where it comes from (the default).")] = False,
    downstream: Annotated[bool, typer.Option("--downstream", help="What depends on it (impact analysis).")] = False,
    depth: Annotated[int | None, typer.Option("--depth", min=1, help="At most this many steps (default: all).")] = None,
    indirect: Annotated[
        bool,
        typer.Option(
            "--indirect", help="Also the columns that only filter, join, group or order the rows (INDIRECT edges)."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the graph as JSON.")] = False,
    mermaid: Annotated[bool, typer.Option("--mermaid", help="Print a Mermaid flowchart.")] = False,
    dot: Annotated[bool, typer.Option("--dot", help="Print Graphviz DOT (`| dot -Tsvg > lineage.svg`).")] = False,
) -> None:
    """Where a table or column comes from (--upstream, the default) or what depends on it (--downstream),
    as the jobs' latest runs recorded it in the lineage store. Any dataset the store knows works:
    gold.daily_spend, kafka:transactions, mlflow:mdslab-fraud, api:POST /v1/transactions."""
    from mdslab.workloads.lake import build_registry
    from mdslab.workloads.lineage.recorded import lab_names, load_lineage
    from mdslab.workloads.lineage.render import as_dict, as_dot, as_mermaid
    from mdslab.workloads.lineage.traversal import Direction, resolve, trace

    if sum((as_json, mermaid, dot)) > 1:
        raise MdslabError("choose one of --json, --mermaid, --dot")
    directions = [d for d, wanted in ((Direction.UPSTREAM, upstream), (Direction.DOWNSTREAM, downstream)) if wanted]
    loaded = settings()
    graph = load_lineage(loaded.postgres, lab_names(build_registry(), loaded))
    root = resolve(graph, node)
    answers = [
        trace(graph, root, direction, depth, indirect=indirect) for direction in directions or [Direction.UPSTREAM]
    ]
    if as_json:
        documents = [as_dict(answer) for answer in answers]
        console.print_json(json.dumps(documents[0] if len(documents) == 1 else documents))
    elif mermaid or dot:
        for answer in answers:
            print(as_mermaid(answer) if mermaid else as_dot(answer), end="")
    else:
        for answer in answers:
            console.print(_tree(answer))


def _tree(answer: LineageAnswer) -> Tree:
    from mdslab.workloads.lineage.traversal import Direction

    upstream = answer.direction is Direction.UPSTREAM
    children: dict[Any, list[tuple[Any, str]]] = {}
    for edge in answer.edges:
        near, far = (edge.target, edge.source) if upstream else (edge.source, edge.target)
        how = " ".join(part for part in (edge.type, edge.subtype) if part)
        children.setdefault(near, []).append((far, how))
    arrow = "is built from" if upstream else "is used by"
    tree = Tree(f"[bold]{escape(str(answer.root))}[/] [dim]{arrow}[/]")
    shown = {answer.root}

    def grow(branch: Tree, node: Any) -> None:
        for far, how in children.get(node, []):
            label = escape(str(far)) + (f" [dim]({how})[/]" if how else "")
            if far in shown:
                branch.add(label + " [dim](shown above)[/]")
                continue
            shown.add(far)
            grow(branch.add(label), far)

    grow(tree, answer.root)
    if not answer.edges:
        tree.add("[dim](nothing recorded)[/]")
    return tree


@lineage_app.command("runs")
@one_line_errors
def lineage_runs(
    job: Annotated[
        str | None, typer.Argument(help="Only this job and its sub-jobs (mdslab.pipeline takes its steps).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Run history: each run's job, state, duration, and the datasets it read and wrote at their versions."""
    from mdslab.workloads.lake import build_registry
    from mdslab.workloads.lineage.history import run_history
    from mdslab.workloads.lineage.recorded import lab_names

    loaded = settings()
    names = lab_names(build_registry(), loaded)
    runs = run_history(loaded.postgres, names, job=job, limit=limit)
    if as_json:
        console.print_json(json.dumps([run.as_dict() for run in runs]))
        return
    if not runs:
        console.print("no runs recorded yet: run the pipeline (`mdslab pipeline run` or `make demo`)")
        return
    out = Table("started (UTC)", "job", "state", "seconds", "read", "wrote", "run id", title_justify="left")
    for run in runs:
        colour = {"COMPLETE": "green", "FAIL": "red"}.get(run.state, "yellow")
        out.add_row(
            f"{run.started:%Y-%m-%d %H:%M:%S}",
            run.job,
            f"[{colour}]{run.state}[/]" + (f" {escape(run.error)}" if run.error else ""),
            "" if run.seconds is None else f"{run.seconds:.1f}",
            _datasets(run.inputs),
            _datasets(run.outputs),
            run.run_id,
        )
    print_table(out, drop_first=("run id", "read", "seconds"))


def _datasets(datasets: Sequence[Any]) -> str:
    return ", ".join(str(d) for d in datasets)


@lineage_app.command("flush")
@one_line_errors
def lineage_flush() -> None:
    """Send the lineage events waiting in the spool (kept when the lineage sink was down) now."""
    from mdslab.workloads.lineage.delivery import lineage_emitter

    emitter = lineage_emitter(settings())
    try:
        report = emitter.flush()
    finally:
        emitter.close()
    if report.waiting:
        raise MdslabError(
            f"{report.sent} spooled lineage event(s) sent, {report.waiting} still waiting: the lineage sink does "
            "not answer (`mdslab status`); they are kept and sent with the next event or the next flush"
        )
    console.print(f"{report.sent} spooled lineage event(s) sent; none waiting")
