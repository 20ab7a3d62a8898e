"""Writes docs/architecture.md from the code, so the map cannot drift from the house.

The floors and what may import what come from the import contract in pyproject.toml (the one
`make lint` enforces), each package's paragraph from its docstring, and the "uses" lines from the real
import graph (grimp, the library import-linter is built on). The data flow is the one hand-written part.

    python tools/architecture.py          # rewrite docs/architecture.md
    python tools/architecture.py --check  # exit 1 if it is stale (make lint, tests/unit/test_import_floors.py)
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
# where each top-level part of the package lives in the checkout (pyproject's package-dir mapping)
SOURCE_DIRS = {"mdslab.workloads": "workloads", "mdslab.ml": "ml", "mdslab.llm": "llm", "mdslab.dags": "dags"}
FLOOR_NAMES = ("Roof", "Second floor", "First floor", "Ground floor")

DATA_FLOW = """\
```mermaid
flowchart LR
    sim[simulator / any client] -->|POST /v1/events| api[API: mdslab.api]
    api -->|produce, acks=all| kafka[(Kafka topics)]
    kafka -->|stream consumer, offsets in the commit| bronze[(bronze: Delta on S3)]
    pg[(PostgreSQL: reference data)] -->|reference steps| bronze
    bronze -->|silver steps: contract, dedupe, quarantine| silver[(silver)]
    silver -->|gold steps| gold[(gold)]
    gold -->|quality gate, then publish| readers[readers: scoring, RAG index, SQL, status]
    gold --> ml[ml: train, register, score]
    silver --> llm[llm: index, retrieve, answer]
```

Events enter through the API (`mdslab.workloads.ingestion` routes), which acknowledges only what Kafka
stored; the stream consumer writes them to bronze exactly once (Kafka offsets recorded in the Delta
commit). Reference data comes from PostgreSQL. The pipeline (`mdslab.workloads.pipeline`) builds silver and
gold on Spark-on-Ray (`mdslab.compute`) or DuckDB, incrementally from the versions each step recorded, and
the quality gate publishes a build only when it passes. `mdslab.ml` trains and scores from gold,
`mdslab.llm` indexes silver and documents for RAG; every job reports OpenLineage runs
(`mdslab.workloads.lineage`). The roof (CLI, API app, DAGs and flows, orchestration tasks) composes these;
it holds no logic of its own beyond wiring.
"""


def contract_layers() -> list[str]:
    """The layers contract's floors as written in pyproject.toml, top first (``a : b`` or ``a | b``)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return list(contract["layers"])


def modules_of(layer: str) -> list[str]:
    return [name.strip() for name in re.split(r"[|:]", layer)]


def independent(layer: str) -> bool:
    return "|" in layer


def source_of(module: str) -> Path:
    """The module's file or package directory in the checkout."""
    top = ".".join(module.split(".")[:2])
    base = ROOT / SOURCE_DIRS[top] if top in SOURCE_DIRS else ROOT / "platform" / "mdslab" / module.split(".")[1]
    return base if base.is_dir() else base.with_suffix(".py")


def summary(module: str) -> str:
    """The first paragraph of the module's docstring, on one line."""
    path = source_of(module)
    text = (path / "__init__.py" if path.is_dir() else path).read_text()
    doc = ast.get_docstring(ast.parse(text)) or ""
    return " ".join(doc.split("\n\n")[0].split())


def uses(modules: list[str]) -> dict[str, list[str]]:
    """Which top-level modules each one imports today (the real graph)."""
    tree = ROOT / ".cache" / "architecture"
    subprocess.run(["bash", str(ROOT / "tools" / "package-tree.sh"), str(tree)], check=True)
    sys.path.insert(0, str(tree))
    import grimp

    graph = grimp.build_graph("mdslab", cache_dir=None)
    found: dict[str, list[str]] = {}
    for module in modules:
        found[module] = [
            other
            for other in modules
            if other != module and graph.direct_import_exists(importer=module, imported=other, as_packages=True)
        ]
    return found


def render() -> str:
    written = contract_layers()
    layers = [modules_of(layer) for layer in written]
    everything = [module for layer in layers for module in layer]
    imports = uses(everything)
    lines = [
        "# Architecture: the floors of the house",
        "",
        "<!-- Written by `python tools/architecture.py` from the import contract in pyproject.toml, the",
        "     packages' docstrings and the import graph; `make lint` fails when it is stale. Do not edit. -->",
        "",
        "The lab is one Python package, `mdslab`, built in floors. A floor may import the floors below it, never",
        "one above; `make lint` enforces it (`tools/lint-imports.sh`, import-linter). On a floor written with `|`",
        "the modules may not import each other either (ml and llm are independent); with `:` they may.",
        "",
        "## Data flow",
        "",
        DATA_FLOW,
        "## Floors",
        "",
    ]
    for number, (layer, modules) in enumerate(zip(written, layers, strict=True)):
        below = [module for lower in layers[number + 1 :] for module in lower]
        above = [module for upper in layers[:number] for module in upper]
        lines.append(f"### {FLOOR_NAMES[number]}: {', '.join(f'`{m}`' for m in modules)}")
        lines.append("")
        siblings = "not each other" if independent(layer) else "each other"
        may = f"the floors below, and {siblings}" if below else f"only {siblings}"
        importers = ", ".join(f"`{m}`" for m in above) if above else "nothing (the roof)"
        lines.append(f"May import {may}. May be imported by: {importers}.")
        lines.append("")
        for module in modules:
            path = source_of(module).relative_to(ROOT)
            lines.append(f"- **`{module}`** (`{path}{'/' if source_of(module).is_dir() else ''}`): {summary(module)}")
            used = imports[module]
            lines.append(f"  Uses: {', '.join(f'`{m}`' for m in used) if used else 'none of the above'}.")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="Exit 1 if docs/architecture.md is stale.")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not DOC.exists() or DOC.read_text() != text:
            print("docs/architecture.md is stale: run `python tools/architecture.py`", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
