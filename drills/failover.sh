#!/usr/bin/env bash
# Failover drill: two gateways under load (strict and window mode) on a Redis master with one
# replica and three Sentinels (nonce_replicas_ack = 1, and = 0 reported only), then on a
# PostgreSQL primary with a synchronous standby behind a TCP proxy; the primary is killed
# (kill -9) at a random moment, the replica or standby takes over, everything is replayed
# through both gateways: zero accepted twice. Prints promoted_ms and recover_ms.
# Usage: drills/failover.sh [--short]   (needs redis-server, redis-cli and PostgreSQL with
# pg_basebackup; ./test.sh installs them)
source "$(dirname "$0")/lib.sh"
run_drill failover drill_failover
