#!/usr/bin/env bash
# scripts/setup-deps.sh: installs the Debian packages jobq needs to build, test,
# fuzz and benchmark, and nothing else. Idempotent: runs `apt-get update` and
# `apt-get install` only when something is missing. Used by both README
# commands and by .ci/run.
set -euo pipefail
mapfile -t PKGS < "$(dirname "$0")/packages.txt" # one Debian package per line
missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "setup-deps: all ${#PKGS[@]} packages present"
    exit 0
fi
echo "setup-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
