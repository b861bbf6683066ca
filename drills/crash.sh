#!/usr/bin/env bash
# Crash drill: kill -9 the gateway under load (once, then repeatedly at seeded random moments),
# restart it on the same data, replay every request ever sent: zero accepted twice.
# Strict mode with small counters and window mode with the test clock frozen (docs/design-decisions.md 35).
# Usage: drills/crash.sh [--short]
source "$(dirname "$0")/lib.sh"
run_drill crash drills drill_crash
