#!/usr/bin/env bash
# mypy on the package as it is installed (tools/package-tree.sh: mypy cannot follow the package-dir mapping).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tree="$root/.cache/typecheck"
"$root/tools/package-tree.sh" "$tree"
cd "$tree"
exec "${PYTHON:-python}" -m mypy --config-file "$root/pyproject.toml" -p mdslab "$@"
