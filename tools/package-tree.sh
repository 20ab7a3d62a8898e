#!/usr/bin/env bash
# The package as it is installed, as a directory: platform/mdslab with workloads/, ml/, llm/ and dags/ mounted
# at mdslab.workloads / mdslab.ml / mdslab.llm / mdslab.dags (the package-dir mapping in pyproject.toml, which
# mypy and import-linter cannot follow on their own). Usage: tools/package-tree.sh DIR (DIR/mdslab is
# replaced). The tree is symlinks, so findings point at the real files' contents.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tree="$1"
rm -rf "$tree/mdslab" && mkdir -p "$tree/mdslab"
for entry in "$root"/platform/mdslab/*; do ln -s "$entry" "$tree/mdslab/$(basename "$entry")"; done
ln -s "$root/workloads" "$tree/mdslab/workloads"
ln -s "$root/ml" "$tree/mdslab/ml"
ln -s "$root/llm" "$tree/mdslab/llm"
ln -s "$root/dags" "$tree/mdslab/dags"
