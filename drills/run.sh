#!/usr/bin/env bash
# Runs every fault drill (full form unless --short) and prints their one-line summaries.
# Usage: drills/run.sh [--short]   (./test.sh runs `drills/run.sh --short`)
set -euo pipefail
here=$(dirname "$0")
started=$(date +%s)
for drill in crash disk outage failover upstream reload; do
    "$here/$drill.sh" "$@"
done
echo "==> all drills passed in $(($(date +%s) - started))s"
