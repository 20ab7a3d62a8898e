#!/usr/bin/env bash
# The floors as import contracts ([tool.importlinter] in pyproject.toml), checked by import-linter on the
# package as it is installed (tools/package-tree.sh: import-linter cannot follow the package-dir mapping).
# Usage: tools/lint-imports.sh [PROJECT_DIR] (default: this checkout; the tests point it at a copy).
set -euo pipefail
root=$(cd "${1:-$(dirname "$0")/..}" && pwd)
python=$(command -v "${PYTHON:-python}")
python=$(cd "$(dirname "$python")" && pwd)/$(basename "$python")
tree="$root/.cache/importlint"
"$root/tools/package-tree.sh" "$tree"
cd "$tree"
PYTHONPATH="$tree" exec "$python" -c 'import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())' \
    "$root/pyproject.toml" --no-cache
