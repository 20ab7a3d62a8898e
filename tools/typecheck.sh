#!/usr/bin/env bash
# mypy on the package as it is installed: platform/mdslab with workloads/, ml/, llm/ and dags/ mounted at
# mdslab.workloads / mdslab.ml / mdslab.llm / mdslab.dags (the package-dir mapping in pyproject.toml, which mypy
# cannot follow on its own). The tree is symlinks, so errors point at the real files' contents.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tree="$root/.cache/typecheck"
rm -rf "$tree" && mkdir -p "$tree/mdslab"
for entry in "$root"/platform/mdslab/*; do ln -s "$entry" "$tree/mdslab/$(basename "$entry")"; done
ln -s "$root/workloads" "$tree/mdslab/workloads"
ln -s "$root/ml" "$tree/mdslab/ml"
ln -s "$root/llm" "$tree/mdslab/llm"
ln -s "$root/dags" "$tree/mdslab/dags"
cd "$tree"
exec "${PYTHON:-python}" -m mypy --config-file "$root/pyproject.toml" -p mdslab "$@"
