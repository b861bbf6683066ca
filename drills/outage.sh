#!/usr/bin/env bash
# Store outage drill: two gateways on PostgreSQL keys and Redis or PostgreSQL nonces under
# load; the nonce store is paused (SIGSTOP/SIGCONT), killed and restarted: 503 fail-closed
# while it is out, service resumes by itself, zero accepted twice.
# Usage: drills/outage.sh [--short]   (needs redis-server and PostgreSQL; ./test.sh installs them)
source "$(dirname "$0")/lib.sh"
run_drill outage drill_outage
