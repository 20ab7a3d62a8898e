#!/usr/bin/env bash
# System programs the test suite runs that no Python wheel ships: Prometheus (+ promtool), to check the
# dashboards and alert rules against a real one, nix-instantiate, to parse-check flake.nix, and Chromium,
# to render the lab's web pages in a real browser (tests/browser.py).
# Installs them from Debian when missing and possible (root + apt-get); `nix develop` provides them too.
set -euo pipefail
declare -A package_of=([prometheus]=prometheus [promtool]=prometheus [nix-instantiate]=nix-bin [chromium]=chromium)
missing=()
for program in "${!package_of[@]}"; do
    command -v "$program" >/dev/null 2>&1 || missing+=("${package_of[$program]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing from Debian: $packages"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $packages >/dev/null \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends $packages >/dev/null; }
    exit 0
fi
echo "missing programs from: $packages. Install them (Debian: sudo apt-get install $packages) or use 'nix develop'." >&2
exit 1
