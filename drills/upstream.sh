#!/usr/bin/env bash
# Upstream failure drill: upstreams that refuse, never answer, reset or close mid-response or
# stall mid-body: exactly 502/504 JSON, the gateway stays healthy, zero accepted twice.
# Usage: drills/upstream.sh [--short]
source "$(dirname "$0")/lib.sh"
run_drill upstream drill_upstream
