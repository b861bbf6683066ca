#!/usr/bin/env bash
# Full-disk drill: the data dir on a tmpfs filled to the last block (else RLIMIT_FSIZE):
# 503 fail-closed, never a 200 for an unrecorded nonce, recovery when space returns, then
# kill -9 and a replay of everything: zero accepted twice.
# Usage: drills/disk.sh [--short]   (WBAUTH_DRILL_DISK=rlimit forces the fallback)
source "$(dirname "$0")/lib.sh"
run_drill disk drill_disk
