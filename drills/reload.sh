#!/usr/bin/env bash
# Live reload drill: 20 reloads (100 in the full form) by SIGHUP, POST /admin/reload and
# `wbauth reload` in turn, each changing a route, a kind and a rate limit, under load on
# keep-alive connections; two broken files refused in between. Zero failed requests, zero
# dropped connections, each change in force from the next request.
# Usage: drills/reload.sh [--short]
source "$(dirname "$0")/lib.sh"
run_drill reload drill_reload
