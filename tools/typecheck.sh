#!/usr/bin/env bash
# mypy on the package as it is installed (tools/package-tree.sh: mypy cannot follow the package-dir mapping),
# and on the benchmarks (bench/, top-level modules that import the package), in one run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tree="$root/.cache/typecheck"
"$root/tools/package-tree.sh" "$tree"
cd "$tree"
exec "${PYTHON:-python}" -m mypy --config-file "$root/pyproject.toml" mdslab "$root"/bench/*.py "$@"
